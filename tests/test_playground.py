"""The playground's server side: stepping gives the CLI's weights, explain is explain's,
export repeats the run, the server serves only its assets and checks every message."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import running_playground
from deltaprop.cli import main
from deltaprop.config import resolve
from deltaprop.errors import ConfigError, DataError
from deltaprop.model import Model
from deltaprop.playground import make_server
from deltaprop.playground import data as pdata
from deltaprop.playground.server import ASSETS, MAX_BODY
from deltaprop.playground.session import LIMITS, Session, defaults_for, page_settings
from deltaprop.runs import prepare_run


def _settings(data, **changes):
    d = defaults_for(data)
    d.pop("data")
    return {k: v for k, v in d.items() if v is not None} | changes


@pytest.fixture
def session(tmp_path):
    s = Session("test", folder=str(tmp_path))
    yield s
    s.close()


def _steps(s, action, times=1):
    for _ in range(times):
        s.control(action)
        s.wait_idle()


# ----------------------------------------------------------------------------- stepping == the CLI
def test_spirals_default_is_the_recommendation_narrowed_to_what_explain_traces(session):
    session.configure("spirals", _settings("spirals"))
    setup = session.setup()
    assert setup["sizes"] == [2, 16, 16, 1]
    assert setup["explainable"] and session.run.model.network.n_params == 337
    cli = resolve({"data": "spirals"})
    assert (session.config.activation, session.config.optimizer, session.config.lr) == (cli.activation, cli.optimizer, cli.lr)


def test_stepped_run_equals_prepare_run_with_the_numpy_engine_bit_for_bit(session):
    """Steps, an epoch step, play and pause in any mix: after E epochs the weights are those of
    the library's run (what `deltaprop train --engine numpy` runs) with the same settings."""
    session.configure("spirals", _settings("spirals", epochs=40, hidden="8,8", activation="tanh"))
    _steps(session, "step", 5)          # 5 single updates into epoch 1
    _steps(session, "epoch")            # the rest of epoch 1
    session.control("play")
    deadline = time.monotonic() + 30
    while session.frame()["epoch"] < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    session.control("pause")
    session.wait_idle()
    f = session.frame()
    if f["pending"]["update_in_epoch"] != 1:
        _steps(session, "epoch")        # to an epoch boundary
    epochs = session.frame()["epoch"]
    assert epochs >= 3
    ours = session.run.model.network.flat.copy()
    cfg = session.config.replace(epochs=epochs)
    ref = prepare_run(cfg)
    ref.trainer.engine = "numpy"
    ref.fit()
    np.testing.assert_array_equal(ours, ref.model.network.flat)
    # and the updates each recorded with their batch loss, in order
    assert [u for u, _, _ in session.updates] == list(range(1, session.run.trainer.optimizer.t + 1))


@pytest.mark.parametrize("data, changes", [
    ("gaussians", {"mode": "batch", "optimizer": "irprop+", "lr": 0.05}),
    ("gaussians", {"mode": "batch", "schedule": "bold_driver", "lr": 5.0}),  # undoes worse epochs
    ("xor", {"mode": "stochastic", "momentum": 0.9, "nesterov": True}),
    ("circles", {"mode": "minibatch", "batch_size": 7, "optimizer": "adam", "lr": 0.01, "stall": 2}),
    ("parity", {}),
])
def test_stepped_run_equals_the_library_run_for_other_set_ups(session, data, changes):
    session.configure(data, _settings(data, **changes))
    _steps(session, "step", 2)
    _steps(session, "epoch", 6)
    frame = session.frame()
    epochs = frame["epoch"]
    assert frame["pending"]["update_in_epoch"] == 1 and epochs >= 6  # at an epoch's start
    ref = prepare_run(session.config.replace(epochs=epochs))
    ref.fit()
    np.testing.assert_array_equal(session.run.model.network.flat, ref.model.network.flat)
    assert session.run.trainer.history.events == ref.trainer.history.events


@pytest.mark.parametrize("data, changes", [("circles", {}), ("xor", {}),
                                           ("circles", {"hidden": "4,3", "activation": "relu,tanh"})])
def test_exported_config_repeats_the_run_through_deltaprop_train(session, tmp_path, data, changes):
    session.configure(data, _settings(data, epochs=500, **changes))
    _steps(session, "epoch", 3)
    toml, cfg = session.export_config()
    assert cfg.epochs == 3
    if changes:  # one activation per hidden layer: in the file, and in the network it builds
        assert 'activation = "relu,tanh"' in toml
        assert [layer.activation.name for layer in session.run.model.network.layers][:2] == ["relu", "tanh"]
    os.makedirs(tmp_path / "out")
    (tmp_path / "out" / "playground.toml").write_text(toml)
    got = session.export_data()
    if got is not None:
        (tmp_path / "out" / got[0]).write_bytes(got[1])
    model_bytes = session.export_model()
    (tmp_path / "out" / "page.npz").write_bytes(model_bytes)
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path / "out")
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["train", "--config", "playground.toml", "--out", "cli.npz", "--quiet"]) == 0
    finally:
        os.chdir(cwd)
    cli = Model.load(tmp_path / "out" / "cli.npz").network.flat
    page = Model.load(tmp_path / "out" / "page.npz").network.flat
    np.testing.assert_array_equal(page, session.run.model.network.flat)
    np.testing.assert_array_equal(cli, page)


def test_explain_is_deltaprop_explain_for_the_saved_model_and_the_next_sample(session, tmp_path):
    session.configure("circles", _settings("circles"))
    _steps(session, "step", 7)
    r = session.explain("W1[1,2]")
    path = tmp_path / "m.npz"
    path.write_bytes(session.export_model())
    x = ",".join(repr(v) for v in r["input"])
    t = ",".join(repr(v) for v in r["target"])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["explain", "--model", str(path), f"--input={x}", f"--target={t}", "--lr", repr(r["lr"]),
                     "--format", "json"]) == 0
    cli = json.loads(buf.getvalue())
    ours = r["trace"]
    assert [s["id"] for s in ours["sections"]] == [s["id"] for s in cli["sections"]]
    for a, b in zip(ours["sections"], cli["sections"]):
        assert [(row["name"], row["value"]) for row in a["rows"]] == [(row["name"], row["value"]) for row in b["rows"]]
    # the sample is the one the next update uses
    assert r["sample"] == int(session.pending["rows"][0])
    np.testing.assert_array_equal(r["input"], session.run.train.X[r["sample"]])


def test_the_actual_update_shown_is_the_one_the_run_then_makes(session):
    session.configure("spirals", _settings("spirals"))
    _steps(session, "step", 3)
    r = session.explain("W2[3,4]")
    before = session.run.model.network.params.copy()
    _steps(session, "step")
    after = session.run.model.network.params
    np.testing.assert_array_equal(np.asarray(r["actual"]["delta"]), after - before)
    assert set(r["internals"]["state"]) >= {"m", "v"}  # Adam's moments
    assert "value" in r["internals"]["state"]["m"]


def test_optimizer_internals_rprop_step_sizes_and_bold_driver_lr(session):
    session.configure("gaussians", _settings("gaussians", mode="batch", optimizer="irprop+", lr=0.05))
    _steps(session, "epoch", 3)
    st = session.internals("W1[0,0]")
    assert set(st["state"]) >= {"step_size"}
    assert st["state"]["step_size"]["min"] > 0
    session.configure("gaussians", _settings("gaussians", schedule="bold_driver", lr=5.0, mode="batch"))
    _steps(session, "epoch", 6)
    lrs = session.internals()["lr_history"]
    assert len(set(lrs)) > 1  # the bold driver changed the learning rate


def test_gradcheck_of_the_current_weights(session):
    session.configure("spirals", _settings("spirals", hidden="8,8", activation="tanh"))
    _steps(session, "epoch")
    r = session.gradcheck()
    assert r["n_params"] == 105
    assert r["max_rel_error"] < 1e-5  # float64 central differences of a 105-parameter tanh net (smooth: no kinks)


def test_compare_modes_start_from_the_same_weights_and_order(session):
    from deltaprop.playground.compare import compare_modes

    session.configure("circles", _settings("circles"))
    r = compare_modes(session, 5)
    modes = r["modes"]
    assert set(modes) == {"stochastic", "minibatch", "batch"}
    assert len({m["initial_weights"] for m in modes.values()}) == 1
    assert modes["stochastic"]["first_order"] == modes["minibatch"]["first_order"]
    n = r["samples"]
    assert modes["stochastic"]["updates"][-1] == 5 * n
    assert modes["batch"]["updates"][-1] == 5
    assert modes["minibatch"]["samples"][-1] == modes["batch"]["samples"][-1] == 5 * n
    with pytest.raises(ConfigError, match="at most"):
        compare_modes(session, LIMITS["compare_epochs"] + 1)
    session.configure("circles", _settings("circles", optimizer="rprop-", mode="batch"))
    r = compare_modes(session, 3)
    assert "error" in r["modes"]["stochastic"] and "batch" in r["modes"]["stochastic"]["error"]
    assert "error" not in r["modes"]["batch"]


# ----------------------------------------------------------------------------- checking settings
@pytest.mark.parametrize("values, message", [
    ({"lr": -1}, "lr must be a number > 0"),
    ({"lr": "fast"}, "lr must be a number"),
    ({"hidden": "64"}, "at most 32 per layer"),
    ({"hidden": "4,4,4,4"}, "at most 3"),
    ({"epochs": 10**6}, "at most 100,000"),
    ({"activation": "nope"}, "activation must be one of"),
    ({"data": "xor"}, "unknown setting 'data'"),
    ({"out": "/etc/passwd"}, "unknown setting 'out'"),
    ({"optimizer": "lbfgs", "mode": "batch"}, "lbfgs runs scipy's own iterations, which the playground cannot step"),
])
def test_page_settings_are_checked_by_the_settings_table_and_the_caps(values, message):
    with pytest.raises(ConfigError, match=message):
        page_settings(values)


def test_a_batch_only_optimizer_in_stochastic_mode_is_a_clear_error(session):
    with pytest.raises(ConfigError, match="use mode 'batch'"):
        session.configure("xor", _settings("xor", optimizer="rprop+", mode="stochastic"))


def test_uploaded_csv_two_columns_chosen(tmp_path, session):
    text = "a,b,c,label\n" + "\n".join(f"{i % 7},{i % 5},{i},{'yes' if i % 2 else 'no'}" for i in range(40))
    path = pdata.write_upload(text, "a", "c", "label", str(tmp_path))
    with open(path) as f:
        assert f.readline().strip() == "a,c,label"
    session.configure("csv", _settings("csv"), {"text": text, "x": "a", "y": "c", "target": "label", "name": "my.csv"})
    assert session.setup()["feature_names"] == ["a", "c"]
    bad = "a,b,label\n1,2,x\n3,oops,y\n"
    with pytest.raises(DataError, match=r"^bad.csv: line 3, column 'b'"):
        pdata.write_upload(bad, "a", "b", "label", str(tmp_path), "bad.csv")
    with pytest.raises(DataError, match="no column 'z'"):
        pdata.write_upload(bad, "a", "z", "label", str(tmp_path))
    with pytest.raises(DataError, match="up to 1,000,000 bytes"):
        pdata.write_upload("a,b,c\n" + "1,2,3\n" * 200_000, "a", "b", "c", str(tmp_path))


def test_explain_of_a_regression_takes_the_target_as_the_network_trains_on_it(session):
    # the network trains on standardised targets; the trace must compare its output with the
    # same t' (explain_model standardises the raw target once, as the model does)
    text = "a,c,y\n" + "\n".join(f"{i % 7},{i % 5},{1000.5 + 300 * (i % 7) + 0.1 * i:.1f}" for i in range(40))
    session.configure("csv", _settings("csv", loss="mse", output_activation="identity"),
                      {"text": text, "x": "a", "y": "c", "target": "y", "name": "reg.csv"})
    out = session.explain()
    run, i = session.run, out["sample"]
    assert run.model.target_scaler is not None
    assert out["trace"]["target"]["values"] == pytest.approx(run.T[i].tolist(), rel=1e-12)
    assert out["trace"]["target"]["raw"] == pytest.approx(run.train.T[i].tolist(), rel=1e-12)


# ----------------------------------------------------------------------------- the server
@pytest.fixture
def server():
    with running_playground() as srv:
        yield srv


def _get(url, raw=False):
    with urllib.request.urlopen(url, timeout=20) as r:
        body = r.read()
        return (r.status, body) if raw else (r.status, json.loads(body))


def _post(url, obj, data=None):
    req = urllib.request.Request(url, data=data if data is not None else json.dumps(obj).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_server_binds_to_localhost_and_serves_its_assets(server):
    assert server.server_address[0] == "127.0.0.1"
    for path in ASSETS:
        status, body = _get(server.url.rstrip("/") + path, raw=True)
        assert status == 200 and len(body) > 100
    status, body = _get(server.url, raw=True)
    assert b"<script src=\"app.js\">" in body and b"http" not in body.split(b"<body>")[1].split(b"</body>")[0]


@pytest.mark.parametrize("path", ["/../pyproject.toml", "/%2e%2e/%2e%2e/pyproject.toml", "/assets/app.js",
                                  "/app.js/../../session.py", "/session.py", "/..%2fsession.py", "//etc/passwd",
                                  "/__init__.py", "/assets/../server.py", "/index.html%00.py"])
def test_no_path_traversal(server, path):
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 404, (path, r.status)
    assert b"import" not in body and b"[build-system]" not in body


def test_messages_are_checked_and_errors_are_clear(server):
    base = server.url + "api/session/tab1/"
    status, r = _post(base + "configure", {"data": "xor", "settings": {"lr": -2}})
    assert status == 400 and "lr must be a number > 0" in r["error"]
    status, r = _post(base + "configure", {"data": "mnist", "settings": {}})
    assert status == 400 and "unknown data set 'mnist'" in r["error"]
    status, r = _post(base + "configure", {"data": "xor", "settings": {"lr": 0.1, "momentum": float("nan")}})
    assert status == 400 and "momentum must be a number in [0, 1), got nan" in r["error"]
    status, r = _post(base + "configure", None, data=b"{not json")
    assert status == 400 and "not JSON" in r["error"]
    status, r = _post(base + "configure", None, data=b"[1, 2]")
    assert status == 400 and "JSON object" in r["error"]
    status, r = _post(base + "control", {"action": "play"})
    assert status == 400 and "no run yet" in r["error"]
    status, r = _post(server.url + "api/session/bad..id/control", {"action": "play"})
    assert status == 400 and "bad session id" in r["error"]
    status, r = _post(base + "configure", {"data": "xor", "settings": _settings("xor")})
    assert status == 200 and r["sizes"] == [2, 2, 1]
    status, r = _post(base + "control", {"action": "jump"})
    assert status == 400 and "unknown action 'jump'" in r["error"]
    status, r = _post(base + "control", {"action": "play", "rate": 10**9})
    assert status == 400 and "updates per second" in r["error"]


def _raw(server, method, path, headers, body=b""):
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


def test_other_sites_pages_are_refused(server):
    """A page of another site can post text/plain or a form to 127.0.0.1 without asking, and
    reach it under its own DNS name (rebinding): both are refused."""
    body = json.dumps({"data": "xor", "settings": {}}).encode()
    status, reply = _raw(server, "POST", "/api/session/t/configure", {"Content-Type": "text/plain"}, body)
    assert status == 400 and b"application/json" in reply
    status, reply = _raw(server, "POST", "/api/session/t/configure",
                         {"Content-Type": "application/x-www-form-urlencoded"}, body)
    assert status == 400
    status, reply = _raw(server, "GET", "/api/meta", {"Host": "evil.example:%d" % server.server_address[1]})
    assert status == 403 and b"its own address" in reply
    status, _ = _raw(server, "GET", "/api/meta", {"Host": "localhost:%d" % server.server_address[1]})
    assert status == 200
    status, _ = _raw(server, "HEAD", "/api/session/t/events", {})
    assert status == 404  # no stream for HEAD
    assert "t" not in server.sessions


def test_request_bodies_are_capped(server):
    import http.client

    c = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    c.putrequest("POST", "/api/session/tab1/configure")
    c.putheader("Content-Type", "application/json")
    c.putheader("Content-Length", str(MAX_BODY + 1))
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    assert r.status == 400 and b"at most" in body


def _read_events(url, n, timeout=20):
    """The first n server-sent events (kind, data) from url, then the connection is dropped."""
    r = urllib.request.urlopen(url, timeout=timeout)
    events, kind = [], None
    while len(events) < n:
        line = r.readline().decode()
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            events.append((kind, json.loads(line.split(":", 1)[1])))
    r.close()
    return events


def test_stream_two_tabs_and_a_closed_tab(server):
    for tab in ("tabA", "tabB"):
        assert _post(server.url + f"api/session/{tab}/configure",
                     {"data": "circles", "settings": _settings("circles")})[0] == 200
    _post(server.url + "api/session/tabA/control", {"action": "play"})
    events = _read_events(server.url + "api/session/tabA/events", 4)
    assert events[0][0] == "setup" and events[0][1]["sizes"] == [2, 4, 1]
    frames = [e for k, e in events if k == "frame"]
    assert frames[-1]["update"] > 0 and len(frames[-1]["regions"]) == 48 * 48
    # tab A's stream is closed: its run pauses, and stays where it was
    deadline = time.monotonic() + 10
    sa = server.sessions["tabA"]
    while sa.gate.playing and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not sa.gate.playing
    u = sa.frame()["update"]
    time.sleep(0.3)
    assert sa.frame()["update"] == u
    # tab B was never touched
    assert server.sessions["tabB"].frame()["update"] == 0
    # the tab comes back: the same run
    events = _read_events(server.url + "api/session/tabA/events", 2)
    assert events[1][1]["update"] == u


@pytest.mark.skipif(sys.platform == "win32", reason="signals to a child process")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_the_url_and_stops_cleanly_on_ctrl_c_or_sigterm(tmp_path, sig):
    before = _session_folders()
    p = subprocess.Popen([sys.executable, "-m", "deltaprop", "playground", "--port", "0", "--no-browser"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "DELTAPROP_LANG": "en"})  # its lines, whatever the locale
    try:
        line = p.stdout.readline()
        assert line.startswith("deltaprop playground: http://127.0.0.1:")
        url = line.split()[2]
        assert _get(url + "api/meta")[1]["limits"]["units"] == LIMITS["units"]
        # a run playing and a stream open when Ctrl-C comes
        _post(url + "api/session/t/configure", {"data": "spirals", "settings": _settings("spirals")})
        _post(url + "api/session/t/control", {"action": "play"})
        stream = urllib.request.urlopen(url + "api/session/t/events", timeout=10)
        stream.readline()
        p.send_signal(sig)
        out, err = p.communicate(timeout=15)
        stream.close()
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err
    assert _session_folders() == before  # the session's folder (its data files) went with it


def _session_folders():
    return {f for f in os.listdir(tempfile.gettempdir()) if f.startswith("deltaprop-playground-")}


def test_cli_refuses_a_port_in_use():
    srv = make_server("127.0.0.1", 0)
    try:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(["playground", "--port", str(srv.server_address[1]), "--no-browser"]) == 2
        assert "cannot listen on 127.0.0.1" in err.getvalue() and "--port" in err.getvalue()
    finally:
        srv.server_close()


@pytest.mark.parametrize("host", ["999.1.1.1", "10.255.255.1"])
def test_cli_names_the_host_when_the_host_is_the_trouble(host):
    # no such name, or an address of no interface here: another --port would not help
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["playground", "--host", host, "--no-browser"]) == 2
    assert f"cannot listen on {host}:8765" in err.getvalue() and "give another --host" in err.getvalue()


def test_defaults_for_every_data_set_build():
    for name in pdata.DATASETS:
        d = defaults_for(name)
        assert d["data"] == name
        page_settings({k: v for k, v in d.items() if k != "data"})
    cfg = resolve({"data": "spirals"})
    assert cfg.hidden == (20, 20)  # the CLI's own spirals default, too big for explain: hence 8,8 here
