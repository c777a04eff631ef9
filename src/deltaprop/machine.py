"""The machine a timing was taken on, recorded beside it: timings mean little without it."""

from __future__ import annotations

import os
import platform
from typing import Sequence

import numpy as np

__all__ = ["THREAD_VARS", "machine_facts"]

#: Thread settings a benchmark run may set; pages that report a run repeat those found set.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def machine_facts(packages: Sequence[str] = ()) -> dict:
    """CPU model, core count, Python, NumPy and BLAS (from threadpoolctl, when installed).

    ``packages`` adds one key per module name: its ``__version__``, None where it does not
    import.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    facts = {"cpu": cpu, "logical_cpus": os.cpu_count(), "python": platform.python_version(),
             "numpy": np.__version__, "platform": platform.platform(),
             "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", *THREAD_VARS)},
             "loadavg": None, "blas": []}
    try:  # other work on the machine skews timings: record how busy it was
        facts["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        facts["blas"] = None
    else:
        facts["blas"] = [{k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                                   "prefix", "threading_layer")}
                         for info in threadpool_info() if info.get("user_api") == "blas"]
    for mod in packages:
        try:
            facts[mod] = __import__(mod).__version__
        except Exception:  # a broken install (not only a missing one) must not stop the run
            facts[mod] = None
    return facts
