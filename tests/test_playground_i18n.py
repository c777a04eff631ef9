"""The playground page's own catalog (domain ``playground``): complete, in step with the page's
HTML and JavaScript, fields and markup kept, compiled, served as JSON in the language asked;
``deltaprop playground --lang ru`` makes Russian the page's language."""

from __future__ import annotations

import json
import os
import re
import signal
import string
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import deltaprop
from conftest import running_playground

babel = pytest.importorskip("babel")  # in the test extra: the catalogs are managed with Babel
from babel.messages.extract import extract_from_file  # noqa: E402
from babel.messages.mofile import read_mo  # noqa: E402
from babel.messages.pofile import read_po  # noqa: E402

from deltaprop.playground.catalog import html_messages  # noqa: E402
from deltaprop.playground.server import page_catalog  # noqa: E402

SRC = Path(deltaprop.__file__).parent
ASSETS = SRC / "playground" / "assets"
PO = SRC / "locale" / "ru" / "LC_MESSAGES" / "playground.po"


def _po():
    with open(PO, "rb") as f:
        return read_po(f, locale="ru")


def _page_messages() -> set[str]:
    """A fresh extraction, as babel-playground.cfg makes it: tr("...") in app.js (Babel's own
    JavaScript extractor, template strings included), the marked texts of index.html."""
    js = {m[1] for m in extract_from_file("javascript", str(ASSETS / "app.js"), keywords={"tr": None},
                                          options={"parse_template_string": True, "jsx": False})}
    html = {m for _, m in html_messages((ASSETS / "index.html").read_text(encoding="utf-8"))}
    return js | html


def test_the_page_catalog_is_complete_and_in_step_with_the_page():
    found = _page_messages()
    assert len(found) > 100  # the extraction sees the page (a broken extractor finds nothing)
    ids = {m.id for m in _po() if m.id}
    assert found - ids == set(), "not in playground.po (see deltaprop/playground/catalog.py)"
    assert ids - found == set(), "in playground.po but no longer on the page"
    assert [m.id for m in _po() if m.id and (not m.string or m.fuzzy)] == []


def _fields(text: str) -> list[str]:
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def _markup(text: str) -> list[str]:
    return sorted(re.findall(r"</?[a-z][^>]*>", text))


def test_fields_and_markup_of_each_translation_match_the_english():
    """A translation keeps the {fields} that tr() fills and the HTML tags (with their ids and
    classes: the page finds <b id="stat-fps"> in the translated text)."""
    bad = [(m.id, m.string) for m in _po() if m.id and
           (_fields(m.id) != _fields(m.string) or _markup(m.id) != _markup(m.string))]
    assert bad == []


def test_the_compiled_page_catalog_is_the_source_compiled():
    with open(PO.with_suffix(".mo"), "rb") as f:
        mo = read_mo(f)
    assert {m.id: m.string for m in mo if m.id} == {m.id: m.string for m in _po() if m.id}
    assert page_catalog("ru") == {m.id: m.string for m in _po() if m.id}
    assert page_catalog("en") == {}


def test_html_extractor_takes_the_marked_inner_html_and_attributes():
    got = [m for _, m in html_messages('<p data-i18n>Press <b>Play</b>\n   now.</p><input title="A  tip" '
                                       'placeholder="none"><label><span data-i18n>Seed</span> <input></label>'
                                       '<p>not marked</p>')]
    assert got == ["Press <b>Play</b> now.", "A tip", "none", "Seed"]


def _get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_the_server_speaks_the_language_asked_else_its_own():
    with running_playground() as srv:
        meta = _get(srv.url + "api/meta")
        assert meta["lang"] == "en" and meta["languages"] == ["en", "ru"]
        assert meta["datasets"]["circles"] == "a disc inside a ring, 200 points"
        ru = _get(srv.url + "api/meta", {"X-Deltaprop-Lang": "ru"})
        assert ru["datasets"]["circles"] == "круг внутри кольца, 200 точек"
        assert _get(srv.url + "api/page-catalog?lang=ru")["Seed"] == "Зерно"
        assert _get(srv.url + "api/page-catalog?lang=en") == {}
        # a settings error in the page's language, worded by the settings table
        req = urllib.request.Request(srv.url + "api/session/t1/configure", method="POST",
                                     data=json.dumps({"data": "xor", "settings": {"lr": -1}}).encode(),
                                     headers={"Content-Type": "application/json", "X-Deltaprop-Lang": "ru"})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        assert json.loads(exc.value.read())["error"].startswith("lr: допустимые значения — число > 0; получено -1")


def test_server_language_comes_from_the_command():
    from deltaprop.playground import make_server

    srv = make_server("127.0.0.1", 0, lang="ru")
    try:
        assert srv.lang == "ru"
    finally:
        srv.server_close()
    srv = make_server("127.0.0.1", 0, lang="xx")
    try:
        assert srv.lang == "en"
    finally:
        srv.server_close()


@pytest.mark.skipif(sys.platform == "win32", reason="signals to a child process")
@pytest.mark.parametrize("argv, env", [(["--lang", "ru"], {"DELTAPROP_LANG": "en"}), ([], {"DELTAPROP_LANG": "ru"}),
                                       ([], {"DELTAPROP_LANG": "", "LANGUAGE": "", "LC_ALL": "",
                                             "LC_MESSAGES": "", "LANG": "ru_RU.UTF-8"})])
def test_deltaprop_playground_lang_ru_makes_the_page_russian(argv, env):
    """The command's language (--lang, DELTAPROP_LANG, the locale) is the page's unless it asks
    for another; the command's own lines are in it too."""
    p = subprocess.Popen([sys.executable, "-m", "deltaprop", "playground", "--port", "0", "--no-browser", *argv],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    try:
        line = p.stdout.readline()
        assert line.startswith("deltaprop playground: http://127.0.0.1:") and "(остановка: Ctrl-C)" in line
        url = line.split()[2]
        meta = _get(url + "api/meta")
        assert meta["lang"] == "ru" and meta["datasets"]["circles"] == "круг внутри кольца, 200 точек"
        assert _get(url + "api/meta", {"X-Deltaprop-Lang": "en"})["datasets"]["circles"].startswith("a disc")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0 and "deltaprop playground: остановлен" in out and "Traceback" not in err


def test_the_servers_own_errors_are_in_the_page_language():
    def post(path, body, lang):
        req = urllib.request.Request(srv.url + path, method="POST", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "X-Deltaprop-Lang": lang})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        return exc.value.code, json.loads(exc.value.read())["error"]

    with running_playground() as srv:
        assert post("api/session/t2/control", {"action": "play"}, "ru") == (
            400, "запуска ещё нет: нажмите «Заново», чтобы начать")
        assert post("api/session/t2/control", {"action": "play"}, "en") == (400, "no run yet: press reset to start one")
        assert post("api/session/bad..id/control", {}, "ru")[1].startswith("недопустимый идентификатор сеанса 'bad..id'")
        assert post("api/session/t2/configure", {"data": "mnist"}, "ru")[1].startswith(
            "неизвестный набор данных 'mnist'; допустимые: ")
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(srv.url + "api/nothing?lang=ru", timeout=10)
        assert exc.value.code == 404 and json.loads(exc.value.read())["error"] == "не найдено"


def test_training_events_reach_the_page_in_its_language(tmp_path):
    # the history keeps an English detail (a stable text of files) and the parts; the page is
    # sent the parts rendered in the language of its request
    from deltaprop import i18n
    from deltaprop.i18n import N_, part, render
    from deltaprop.playground.session import Session, defaults_for

    s = Session("ev", folder=str(tmp_path))
    try:
        settings = {k: v for k, v in defaults_for("xor").items() if v is not None and k != "data"}
        s.configure("xor", settings)
        parts = [part(N_("the loss became NaN or inf after epoch {epoch}"), epoch=3)]
        s.run.trainer.history.events.append({"epoch": 3, "event": "divergence", "detail": render(parts, "en"),
                                             "parts": parts})
        with i18n.language("ru"):
            assert s.internals()["events"][-1]["detail"] == "потери стали NaN или inf после эпохи 3"
        with i18n.language("en"):
            assert s.internals()["events"][-1]["detail"] == "the loss became NaN or inf after epoch 3"
        assert s.run.trainer.history.events[-1]["detail"] == "the loss became NaN or inf after epoch 3"
    finally:
        s.close()
