"""What the playground page gets while a run plays, measured in the real browser: the page's
frame rate, timed frame by frame with requestAnimationFrame, and the updates per second that
reach it, on spirals 2-8-8-1 (tanh, Adam lr 0.01, mini-batch 16: the issue's case).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/playground_page.py [--seconds 20] [--repeat 3]

The server is ``deltaprop playground --no-browser --port 0`` in its own process, as a user runs
it; the page is Debian's chromium (headless, as in the browser tests) driven by Selenium. Each
repetition: the page paused for ``--idle`` seconds (the frame rate with nothing to draw: what
the browser gives on this machine), then Play at full speed, ``--warmup`` seconds ignored, then
``--seconds`` measured. Every animation frame the page records its time stamp and the update
count the last server frame brought; from them:

* fps: 1000 / each frame's interval; the median, and the 5th percentile (the slowest 5% of
  frames are at or below it) as the measure of jank; frames over 50 ms are counted.
* updates/s reaching the page: (last count - first count) / (last stamp - first stamp).

The machine's load average (before and after), logical CPUs and BLAS are printed beside the
figures: on a shared machine the page, the server's training thread and other jobs compete for
the CPUs, and the frame rate falls with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

CASE = "data=spirals&hidden=8,8&activation=tanh&init=glorot_uniform&lr=0.01&epochs=100000"

RECORD = """
window.__bench = {t: [], u: [], busy0: window.pgStats.busyMs};
window.__benchOn = true;
function __rec(t) {
  if (!window.__benchOn) return;
  window.__bench.t.push(t);
  window.__bench.u.push(window.pgStats.update || 0);
  requestAnimationFrame(__rec);
}
requestAnimationFrame(__rec);
"""


def start_server():
    cmd = [sys.executable, "-m", "deltaprop", "playground", "--no-browser", "--port", "0", "--lang", "en"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"the playground did not start: {line!r} {proc.stderr.read()!r}")
    return proc, line.split()[2]


def start_browser(chromium, chromedriver):
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="deltaprop-bench-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1500"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=chromedriver))
    driver.set_script_timeout(60)
    return driver, profile


def wait(driver, js, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if driver.execute_script(js):
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for: {js}")


def record(driver, seconds):
    driver.execute_script(RECORD)
    time.sleep(seconds)
    driver.execute_script("window.__benchOn = false")
    got = driver.execute_script("return {...window.__bench, busy1: window.pgStats.busyMs}")
    busy = None if got.get("busy1") is None or got.get("busy0") is None else got["busy1"] - got["busy0"]
    return np.asarray(got["t"], float), np.asarray(got["u"], float), busy  # busy: None on a page without it


def summary(t, u, busy_ms):
    dt = np.diff(t)
    fps = 1000.0 / dt
    seconds = (t[-1] - t[0]) / 1000.0
    return {"frames": int(len(dt)), "fps_median": float(np.median(fps)), "fps_p5": float(np.percentile(fps, 5)),
            "fps_mean": float(len(dt) / seconds),
            # the page's own JavaScript (parsing frames, drawing) per second of wall time
            "page_js_ms_per_second": float("nan") if busy_ms is None else float(busy_ms / seconds),
            "frames_over_50ms": int((dt > 50).sum()), "longest_frame_ms": float(dt.max()),
            "updates_per_second": float((u[-1] - u[0]) / ((t[-1] - t[0]) / 1000.0)),
            "seconds": float(seconds)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds of play per repetition")
    ap.add_argument("--idle", type=float, default=5.0, help="seconds measured paused first")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of play before measuring")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--chromium", default=os.environ.get("DELTAPROP_CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--chromedriver", default=os.environ.get("DELTAPROP_CHROMEDRIVER", "/usr/bin/chromedriver"))
    args = ap.parse_args()
    from deltaprop.machine import machine_facts

    facts = machine_facts()
    load_before = os.getloadavg()
    proc, url = start_server()
    driver = profile = None
    runs = []
    try:
        driver, profile = start_browser(args.chromium, args.chromedriver)
        version = driver.capabilities.get("browserVersion")
        for _ in range(args.repeat):
            driver.get("about:blank")
            driver.get(url + "#" + CASE)
            wait(driver, "return window.pgStats && window.pgStats.events > 0")
            wait(driver, "return document.getElementById('stat-update').textContent === '0'")
            idle = summary(*record(driver, args.idle))
            driver.find_element("id", "play").click()
            time.sleep(args.warmup)
            playing = summary(*record(driver, args.seconds))
            driver.find_element("id", "pause").click()
            runs.append({"paused": idle, "playing": playing})
            print(f"paused: fps median {idle['fps_median']:.1f}, p5 {idle['fps_p5']:.1f}  |  playing: fps median "
                  f"{playing['fps_median']:.1f}, p5 {playing['fps_p5']:.1f}, mean {playing['fps_mean']:.1f}, "
                  f"{playing['frames_over_50ms']} frames over 50 ms of {playing['frames']}, page JS "
                  f"{playing['page_js_ms_per_second']:.0f} ms/s, {playing['updates_per_second']:,.0f} updates/s "
                  f"reach the page", flush=True)
    finally:
        if driver is not None:
            driver.quit()
        if profile:
            shutil.rmtree(profile, ignore_errors=True)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    load_after = os.getloadavg()
    med = {k: float(np.median([r["playing"][k] for r in runs]))
           for k in ("fps_median", "fps_p5", "fps_mean", "page_js_ms_per_second", "updates_per_second")}
    out = {"case": "spirals 2-8-8-1 tanh, adam lr 0.01, minibatch 16", "chromium": version,
           "load_before": load_before, "load_after": load_after, "logical_cpus": facts.get("logical_cpus"),
           "blas": facts.get("blas"), "runs": runs, "median_of_runs": med}
    print(f"median of {args.repeat} runs: fps median {med['fps_median']:.1f}, fps 5th percentile "
          f"{med['fps_p5']:.1f}, mean {med['fps_mean']:.1f}; page JS {med['page_js_ms_per_second']:.0f} ms/s; "
          f"{med['updates_per_second']:,.0f} updates/s reach the page")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; {facts.get('logical_cpus')} "
          f"logical CPUs; BLAS {facts.get('blas')}; chromium {version}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
