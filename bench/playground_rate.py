"""Updates per second of the playground's stepped run (no browser, no page) against the same run
through the NumPy engine without the gate, alternating, on spirals 2-8-8-1 and the page's
default 2-16-16-1.

    python bench/playground_rate.py

The playground caps a playing run at 500 epochs per second (LIMITS['epochs_per_second']); on
spirals (13 updates per epoch) that is 6,500 updates per second, so the figures below it are
the stepped engine's own speed.
"""

from __future__ import annotations

import tempfile
import time

from deltaprop.machine import machine_facts
from deltaprop.playground.session import Session, defaults_for
from deltaprop.runs import prepare_run


def stepped(settings, seconds=3.0):
    with tempfile.TemporaryDirectory() as tmp:
        s = Session("bench", folder=tmp)
        s.configure("spirals", settings)
        t0 = time.perf_counter()
        s.control("play")
        time.sleep(seconds)
        s.control("pause")
        s.wait_idle()
        n = s.frame()["update"]
        dt = time.perf_counter() - t0
        s.close()
        return n / dt


def plain(cfg, epochs=300):
    run = prepare_run(cfg.replace(epochs=epochs))
    run.trainer.engine = "numpy"
    t0 = time.perf_counter()
    run.fit()
    return run.trainer.optimizer.t / (time.perf_counter() - t0)


def main():
    base = {k: v for k, v in defaults_for("spirals").items() if v is not None and k != "data"}
    cases = {"2-8-8-1 tanh": base | {"hidden": "8,8", "activation": "tanh", "init": "glorot_uniform",
                                     "lr": 0.01, "epochs": 50000},
             "2-16-16-1 relu (default)": base | {"epochs": 50000}}
    facts = machine_facts()
    print("load:", facts.get("loadavg"), " cpus:", facts.get("logical_cpus"), " blas:", facts.get("blas"))
    for name, settings in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            s = Session("cfg", folder=tmp)
            s.configure("spirals", settings)
            cfg = s.config
            s.close()
        rows = []
        for _ in range(3):  # alternating
            rows.append((stepped(settings), plain(cfg)))
        st = sorted(r[0] for r in rows)[1]
        pl = sorted(r[1] for r in rows)[1]
        print(f"{name}: stepped {st:,.0f} updates/s, plain NumPy engine {pl:,.0f} updates/s (medians of 3)")


if __name__ == "__main__":
    main()
