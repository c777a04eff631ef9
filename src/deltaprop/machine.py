"""The machine a timing was taken on, recorded beside it: timings mean little without it."""

from __future__ import annotations

import math
import os
import platform
from typing import Sequence

import numpy as np

__all__ = ["THREAD_VARS", "machine_facts", "usable_cpus"]

#: Thread settings a benchmark run may set; pages that report a run repeat those found set.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


#: Where Linux states a container's CPU quota (cgroup v2, then v1: quota and period, in us).
CGROUP_CPU_FILES = (("/sys/fs/cgroup/cpu.max",),
                    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def _cgroup_files() -> tuple:
    """:data:`CGROUP_CPU_FILES`, and before them the ``cpu.max`` of this process's own cgroup v2
    and of each cgroup above it (``/proc/self/cgroup``): a quota set on any of them applies."""
    own = []
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            line = next((ln for ln in f if ln.startswith("0::")), "")
    except (OSError, UnicodeDecodeError):
        line = ""
    path = line[3:].strip().strip("/")
    while path:
        own.append((os.path.join("/sys/fs/cgroup", path, "cpu.max"),))
        path = os.path.dirname(path)
    return (*own, *CGROUP_CPU_FILES)


def _cgroup_cpus(files=None) -> float | None:
    """The CPU quota of this process's cgroups in CPUs (quota / period; the smallest where
    several set one), None where none is set or none can be read. A container started with
    ``--cpus 2`` on a 64-core host sees 64 CPUs in its affinity mask, yet the kernel lets it
    run 2 CPUs' worth of time per period; threads beyond that wait for the next period
    (joblib's loky reads the same files, but costs 0.2 s to import for this one number)."""
    quotas = []
    for names in _cgroup_files() if files is None else files:
        try:
            parts = []
            for name in names:
                with open(name, encoding="ascii") as f:
                    parts += f.read().split()
            quota, period = float(parts[0]), float(parts[1])
        except (OSError, UnicodeDecodeError, IndexError, ValueError):  # absent; "max 100000" (v2): none
            continue
        if 0 < quota < math.inf and 0 < period < math.inf:  # v1's "-1": none
            quotas.append(quota / period)
    return min(quotas) if quotas else None


def usable_cpus() -> int:
    """The CPUs this process can keep busy at once: its affinity mask (``taskset``, a batch
    system's binding), capped by its cgroup's CPU quota rounded up (a container's ``--cpus``);
    at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # (not on macOS or Windows)
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


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
    facts = {"cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": usable_cpus(), "python": platform.python_version(),
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
