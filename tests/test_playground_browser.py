"""The playground in a real browser: Debian's chromium driven through chromedriver by Selenium.

These tests need /usr/bin/chromium and /usr/bin/chromedriver (``apt-get install chromium
chromium-driver``; .ci/run installs them). Where they are missing the tests FAIL, so that CI
cannot pass without running them; on a machine without them, set
DELTAPROP_SKIP_BROWSER_TESTS=1 to skip them knowingly.

Screenshots go to the test's temporary folder, or to $DELTAPROP_PLAYGROUND_SHOTS when set
(``DELTAPROP_PLAYGROUND_SHOTS=docs/img python -m pytest tests/test_playground_browser.py``
makes the pictures docs/playground.md shows). The frame rate and the updates per second
reaching the page are printed (``-s``) and written to playground-timings.json there.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import time
import urllib.request

import numpy as np
import pytest

from conftest import running_playground
from deltaprop.cli import main

CHROMIUM = os.environ.get("DELTAPROP_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DELTAPROP_CHROMEDRIVER", "/usr/bin/chromedriver")


def _require_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install 'deltaprop[playground-test]')")
    if missing:
        why = ("the playground's browser tests need " + ", ".join(missing) +
               "; install them (apt-get install chromium chromium-driver) or set DELTAPROP_SKIP_BROWSER_TESTS=1")
        if os.environ.get("DELTAPROP_SKIP_BROWSER_TESTS") == "1":
            pytest.skip(why)
        pytest.fail(why)


@pytest.fixture(scope="module")
def server():
    with running_playground() as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="deltaprop-chromium-")
    # As root in a container chromium needs --no-sandbox; without the background-networking
    # flags it tries to reach Google's servers, which a closed network refuses.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1500"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_script_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("DELTAPROP_PLAYGROUND_SHOTS") or str(tmp_path_factory.mktemp("shots"))
    os.makedirs(folder, exist_ok=True)
    return folder


def _wait(driver, condition, timeout=20, what="the page"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = condition()
        except Exception:  # the element may be re-rendered in between
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; error box: {_text(driver, 'error')!r}")


def _text(driver, id_):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, id_).text


def _click(driver, id_):
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, id_).click()


def _update(driver) -> int:
    return int(_text(driver, "stat-update").replace(",", "") or -1)


def _open(driver, server, fragment):
    driver.get("about:blank")  # a fresh page load (the same address with another # would not reload)
    driver.get(server.url + "#" + fragment)
    _wait(driver, lambda: driver.execute_script("return window.pgStats && window.pgStats.events > 0"),
          what="the first frame")
    sid = driver.execute_script("return sessionStorage.getItem('deltaprop-playground-sid')")
    return server.sessions[sid]


def _worksheet(driver):
    """The worksheet's rows as the page shows them: name -> the value in its data-value."""
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#ws-table tr[data-name]")
    return {r.get_attribute("data-name"): float(r.get_attribute("data-value")) for r in rows}


_FIND_POINT = """
const [name] = arguments;
const line = document.querySelector(`#net line.hit[data-param="${name}"]`);
const box = document.getElementById("net").getBoundingClientRect();
const cx = box.left + box.width / 2, cy = box.top + box.height / 2;
const mine = (x, y) => { const e = document.elementFromPoint(x, y); return e && e.dataset.param === name; };
for (let t = 0.1; t <= 0.9; t += 0.02) {
  const x = +line.getAttribute("x1") + t * (line.getAttribute("x2") - line.getAttribute("x1"));
  const y = +line.getAttribute("y1") + t * (line.getAttribute("y2") - line.getAttribute("y1"));
  // whole-pixel offsets from the centre (what the click uses), free of other lines 1 px around
  const dx = Math.round(box.left + x - cx), dy = Math.round(box.top + y - cy);
  let free = true;
  for (const ex of [-1, 0, 1]) for (const ey of [-1, 0, 1]) free = free && mine(cx + dx + ex, cy + dy + ey);
  if (free) return [dx, dy];
}
return null;
"""


def _click_weight(driver, name):
    """A real mouse click on the weight's line, at a point where no other line lies on top."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    svg = driver.find_element(By.ID, "net")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", svg)
    time.sleep(1.1)  # past the status line's once-a-second refresh
    offset = driver.execute_script(_FIND_POINT, name)
    assert offset is not None, f"no point of {name}'s line is free to click"
    ActionChains(driver).move_to_element_with_offset(svg, offset[0], offset[1]).click().perform()


def _cli_explain(session, tmp_path):
    """`deltaprop explain --format json` for the model saved now and the next update's sample."""
    run = session.run
    i = int(session.pending["rows"][0])
    model = tmp_path / "now.npz"
    model.write_bytes(session.export_model())
    x = ",".join(repr(float(v)) for v in run.train.X[i])
    t = ",".join(repr(float(v)) for v in run.T[i])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["explain", "--model", str(model), f"--input={x}", f"--target={t}",
                     "--lr", repr(run.trainer.optimizer.lr), "--format", "json"]) == 0
    trace = json.loads(buf.getvalue())
    return i, {row["name"]: row["value"] for s in trace["sections"] for row in s["rows"]}


def test_play_step_mode_switch_and_explain_match_the_cli(browser, server, shots, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    # the timing case, 2-8-8-1 (the page's default for spirals is 2-16-16-1); it plays
    # for seconds and must not finish meanwhile
    s = _open(d, server, "data=spirals&hidden=8,8&activation=tanh&init=glorot_uniform&lr=0.01&epochs=50000")
    assert s.setup()["sizes"] == [2, 8, 8, 1]
    assert _update(d) == 0
    _click(d, "step")
    _wait(d, lambda: _update(d) == 1, what="update 1")
    _click(d, "step-epoch")
    _wait(d, lambda: _update(d) == 13, what="the end of epoch 1 (13 updates of 16 samples)")
    assert s.frame()["update"] == 13

    # Play for a while, measuring what reaches the page
    _click(d, "play")
    samples = []
    for _ in range(6):
        time.sleep(1.0)
        samples.append(d.execute_script("return {fps: window.pgStats.fps, ups: window.pgStats.ups}"))
    _click(d, "pause")
    _wait(d, lambda: not s.gate.playing, what="pause")
    fps = float(np.median([x["fps"] for x in samples[1:]]))
    ups = float(np.median([x["ups"] for x in samples[1:]]))
    timings = {"data": "spirals 2-8-8-1 tanh, adam lr 0.01, minibatch 16", "frames_per_second": fps,
               "updates_per_second_reaching_the_page": ups, "samples": samples}
    with open(os.path.join(shots, "playground-timings.json"), "w") as f:
        json.dump(timings, f, indent=1)
    print("\nplayground timings:", json.dumps(timings))
    # A page that keeps its animation frames while the run plays (60 on an idle machine; the
    # bound leaves room for a CI runner's shared CPUs), and updates arriving by the hundred.
    assert fps >= 30, timings
    assert ups >= 100, timings
    _wait(d, lambda: _update(d) == s.frame()["update"], what="the paused count")

    # Click a weight: the worksheet is explain's, number for number
    Select(d.find_element(By.ID, "speed")).select_by_value("0")
    _click_weight(d, "W2[3,4]")
    _wait(d, lambda: d.find_elements(By.ID, "ws-table"), what="the worksheet")
    page = _worksheet(d)
    i, cli = _cli_explain(s, tmp_path)
    assert f"#{i}" in _text(d, "ws-body")
    assert "dE_total/dW2[3,4]" in page and "W2[3,4]+" in page and "delta2[4]" in page
    for name, value in page.items():
        assert value == cli[name], (name, value, cli[name])
    # ... and the run's own update (Adam, the batch's mean gradient) is what the next step does
    actual = float(d.find_element(By.CSS_SELECTOR, "#ws-actual b").get_attribute("data-value"))
    k = s.run.model.network.param_names().index("W2[3,4]")
    before = float(s.run.model.network.params[k])
    d.save_screenshot(os.path.join(shots, "playground-explain.png"))
    d.execute_script("document.getElementById('worksheet').scrollIntoView()")
    d.save_screenshot(os.path.join(shots, "playground-worksheet.png"))
    d.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="optimizer"]').click()
    _wait(d, lambda: d.find_elements(By.CSS_SELECTOR, '#opt-state tr[data-name="m"]'), what="Adam's moments")
    d.execute_script("document.getElementById('more').scrollIntoView()")
    d.save_screenshot(os.path.join(shots, "playground-optimizer.png"))
    d.execute_script("window.scrollTo(0, 0)")
    _click(d, "step")
    _wait(d, lambda: s.frame()["update"] == _update(d) and s.pending is not None
          and float(s.run.model.network.params[k]) != before, what="the step")
    assert float(s.run.model.network.params[k]) - before == actual

    # Mode switch: stochastic, the same seed, one sample per update
    Select(d.find_element(By.ID, "s-mode")).select_by_value("stochastic")
    _click(d, "apply")
    _wait(d, lambda: s.run.trainer.mode == "stochastic" and _update(d) == 0, what="the stochastic run")
    assert "mode=stochastic" in d.current_url
    for n in range(1, 4):
        _click(d, "step")
        _wait(d, lambda: _update(d) == n, what=f"stochastic update {n}")
    assert "on sample #" in _text(d, "next")
    d.find_element(By.CSS_SELECTOR, 'circle.unit[data-param="b1[2]"]').click()
    _wait(d, lambda: "b1[2]" in _text(d, "ws-body") and d.find_elements(By.ID, "ws-table"), what="a unit's sheet")
    page = _worksheet(d)
    i, cli = _cli_explain(s, tmp_path)
    assert "dE_total/db1[2]" in page and "delta1[2]" in page
    for name, value in page.items():
        assert value == cli[name], (name, value, cli[name])
    d.save_screenshot(os.path.join(shots, "playground-stochastic.png"))
    # the same sheet from the list, for a weight too thin to hit with the mouse
    Select(d.find_element(By.ID, "ws-param")).select_by_value("W1[1,6]")
    _wait(d, lambda: "dE_total/dW1[1,6]" in _worksheet(d), what="the sheet of W1[1,6]")
    page = _worksheet(d)
    for name, value in page.items():
        assert value == cli[name], (name, value, cli[name])


def test_compare_tab_gradcheck_and_export_links(browser, server, shots):
    from selenium.webdriver.common.by import By

    d = browser
    s = _open(d, server, "data=circles&epochs=300")
    _click(d, "play")
    _wait(d, lambda: s.frame()["finished"], timeout=60, what="the end of the run")
    d.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="compare"]').click()
    _click(d, "cmp-run")
    _wait(d, lambda: "Initial weights" in _text(d, "cmp-info"), timeout=60, what="the comparison")
    assert "identical in all modes" in _text(d, "cmp-info")
    d.save_screenshot(os.path.join(shots, "playground-circles.png"))
    d.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="gradcheck"]').click()
    _click(d, "gc-run")
    _wait(d, lambda: "max relative error" in _text(d, "gc-out"), timeout=30, what="the gradient check")
    d.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="export"]').click()
    href = d.find_element(By.ID, "ex-config").get_attribute("href")
    with urllib.request.urlopen(href, timeout=10) as r:
        toml = r.read().decode()
    assert 'data = "circles.csv"' in toml and "epochs = 300" in toml


def test_a_link_restores_the_settings_and_bad_settings_show_an_error(browser, server):
    from selenium.webdriver.common.by import By

    d = browser
    s = _open(d, server, "data=gaussians&hidden=3&lr=0.25&activation=sigmoid")
    assert s.setup()["sizes"] == [2, 3, 1]
    assert d.find_element(By.ID, "s-hidden").get_attribute("value") == "3"
    assert s.config.lr == 0.25 and s.config.activation == "sigmoid"
    lr = d.find_element(By.ID, "s-lr")
    lr.clear()
    lr.send_keys("-1")
    _click(d, "apply")
    _wait(d, lambda: "lr must be a number > 0" in _text(d, "error"), what="the error message")
    hidden = d.find_element(By.ID, "s-hidden")
    hidden.clear()
    hidden.send_keys("100")
    lr.clear()
    lr.send_keys("0.1")
    _click(d, "apply")
    _wait(d, lambda: "at most 32 per layer" in _text(d, "error"), what="the cap's message")
    assert s.setup()["sizes"] == [2, 3, 1]  # the run that was there is kept


def test_upload_a_csv_and_choose_two_columns(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    rows = [f"{150 + i % 40};{50 + (i * 7) % 45};{20 + i % 50};{'f' if (i * 7) % 45 + i % 40 < 40 else 'm'}"
            for i in range(120)]
    path = tmp_path / "people.csv"
    path.write_text("height;weight;age;sex\n" + "\n".join(rows) + "\n")
    s = _open(d, server, "data=xor")
    Select(d.find_element(By.ID, "s-data")).select_by_value("csv")
    d.find_element(By.ID, "csv-file").send_keys(str(path))
    _wait(d, lambda: len(Select(d.find_element(By.ID, "csv-y")).options) == 4, what="the CSV's columns")
    Select(d.find_element(By.ID, "csv-y")).select_by_value("weight")
    assert Select(d.find_element(By.ID, "csv-target")).first_selected_option.text == "sex"
    _click(d, "apply")
    _wait(d, lambda: s.data_name == "csv", what="the CSV run")
    assert s.setup()["feature_names"] == ["height", "weight"] and s.setup()["classes"] == ["f", "m"]
    assert "blue: m, orange: f" in _text(d, "regions-caption")
    _click(d, "step-epoch")
    _wait(d, lambda: s.frame()["epoch"] == 1, what="epoch 1")
    # a CSV whose chosen column holds text: the reader's message, naming the file, line and column
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    d.find_element(By.ID, "csv-file").send_keys(str(bad))
    _wait(d, lambda: len(Select(d.find_element(By.ID, "csv-y")).options) == 3, what="the new columns")
    Select(d.find_element(By.ID, "csv-y")).select_by_value("b")
    _click(d, "apply")
    _wait(d, lambda: "bad.csv: line 3, column 'b'" in _text(d, "error"), what="the CSV error")


def test_one_activation_per_hidden_layer_and_its_toml_repeats_the_run(browser, server, tmp_path):
    """A selector per hidden layer; the run, the link and the exported TOML carry both names, and
    `deltaprop train --config` on that TOML gives the page's weights bit for bit."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = browser
    s = _open(d, server, "data=circles&hidden=5,3&epochs=500")
    assert [e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, "#activations select")] == \
        ["s-act-0", "s-act-1"]
    Select(d.find_element(By.ID, "s-act-0")).select_by_value("relu")
    _click(d, "apply")
    _wait(d, lambda: s.config.activation == ("relu", "tanh"), what="the relu,tanh run")
    assert [layer.activation.name for layer in s.run.model.network.layers] == ["relu", "tanh", "sigmoid"]
    assert "activation=relu%2Ctanh" in d.current_url
    # a third layer gets a third selector, with the first one's choice
    hidden = d.find_element(By.ID, "s-hidden")
    hidden.clear()
    hidden.send_keys("5,3,2")
    _wait(d, lambda: len(d.find_elements(By.CSS_SELECTOR, "#activations select")) == 3, what="three selectors")
    hidden.clear()
    hidden.send_keys("5,3")
    _wait(d, lambda: len(d.find_elements(By.CSS_SELECTOR, "#activations select")) == 2, what="two selectors")
    Select(d.find_element(By.ID, "s-act-0")).select_by_value("relu")
    Select(d.find_element(By.ID, "s-act-1")).select_by_value("tanh")
    for _ in range(2):
        _click(d, "step-epoch")
        time.sleep(0.2)
    _wait(d, lambda: s.frame()["epoch"] == 2, what="epoch 2")
    d.find_element(By.CSS_SELECTOR, '.tabs button[data-tab="export"]').click()
    folder = tmp_path / "repeat"
    folder.mkdir()
    for id_, name in (("ex-config", "playground.toml"), ("ex-model", "page.npz"), ("ex-data", "circles.csv")):
        with urllib.request.urlopen(d.find_element(By.ID, id_).get_attribute("href"), timeout=10) as r:
            (folder / name).write_bytes(r.read())
    toml = (folder / "playground.toml").read_text()
    assert 'activation = "relu,tanh"' in toml and "epochs = 2" in toml
    cwd = os.getcwd()
    try:
        os.chdir(folder)
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["train", "--config", "playground.toml", "--out", "cli.npz", "--quiet"]) == 0
    finally:
        os.chdir(cwd)
    from deltaprop.model import Model

    cli = Model.load(folder / "cli.npz").network
    assert [layer.activation.name for layer in cli.layers] == ["relu", "tanh", "sigmoid"]
    np.testing.assert_array_equal(cli.flat, Model.load(folder / "page.npz").network.flat)


def _numbers(text: str) -> list[str]:
    import re

    return re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)


def test_the_page_in_russian_has_no_english_sentence_and_the_english_numbers(browser, server, shots):
    """The language selector reloads the page in Russian (kept in the address), on the same run:
    no run of English words is left on it (test_i18n's detector), and every number of the status
    line and of the worksheet equals the English page's."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from test_i18n import english_sentences

    d = browser
    s = _open(d, server, "data=spirals&hidden=8,8&activation=tanh&lr=0.01&epochs=50000")
    for n in range(1, 4):
        _click(d, "step")
        _wait(d, lambda: _update(d) == n, what=f"update {n}")
    _click_weight(d, "W2[3,4]")
    _wait(d, lambda: d.find_elements(By.ID, "ws-table"), what="the worksheet")

    def numbers():
        time.sleep(1.1)  # the status line refreshes once a second
        status = _numbers(" ".join(_text(d, i) for i in ("stat-epoch", "stat-update", "stat-samples", "stat-loss",
                                                          "stat-acc")))
        return status, _worksheet(d), _numbers(_text(d, "next")), _numbers(
            d.execute_script("return document.getElementById('ws-text').textContent"))

    english = numbers()
    assert "Next: update 4 of 13 in epoch 1" in _text(d, "next")
    Select(d.find_element(By.ID, "lang")).select_by_value("ru")
    _wait(d, lambda: "lang=ru" in d.current_url and _text(d, "play").endswith("Пуск"), what="the Russian page")
    _wait(d, lambda: d.execute_script("return window.pgStats && window.pgStats.events > 0"), what="a frame")
    assert d.execute_script("return sessionStorage.getItem('deltaprop-playground-sid')") == s.sid
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "ru"
    Select(d.find_element(By.ID, "ws-param")).select_by_value("W2[3,4]")
    _wait(d, lambda: "dE_total/dW2[3,4]" in _worksheet(d), what="the Russian worksheet")
    d.execute_script("document.querySelector('#ws-body details').open = true")
    assert "Далее: обновление 4 из 13 в эпохе 1" in _text(d, "next")
    assert "эпоха" in _text(d, "ws-text") or "Эпоха" in _text(d, "ws-text") or "Прямой" in _text(d, "ws-text")
    russian = numbers()
    assert russian == english
    for tab in ("compare", "optimizer", "gradcheck", "export"):
        d.find_element(By.CSS_SELECTOR, f'.tabs button[data-tab="{tab}"]').click()
        if tab == "optimizer":
            _wait(d, lambda: d.find_elements(By.CSS_SELECTOR, '#opt-state tr[data-name="m"]'), what="the state")
        # "raw x[0]" is a quantity's name in explain's trace (deltaprop explain --lang ru prints it
        # so too), a name like x[0] and W2[3,4]; the detector sees two words in it.
        text = d.find_element(By.TAG_NAME, "body").text.replace("raw x[", "x[")
        assert english_sentences(text) == [], tab
    for attr in ("title", "placeholder"):
        values = d.execute_script(f"return [...document.querySelectorAll('[{attr}]')].map(e => e.getAttribute('{attr}'))")
        assert values and english_sentences("\n".join(values)) == [], attr
    d.execute_script("window.scrollTo(0, 0)")
    d.save_screenshot(os.path.join(shots, "playground-ru.png"))
    # back to English for the other tests (the address keeps the language)
    Select(d.find_element(By.ID, "lang")).select_by_value("en")
    _wait(d, lambda: "lang=en" in d.current_url and _text(d, "play").endswith("Play"), what="the English page")
