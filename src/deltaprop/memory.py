"""Memory checked before it is spent: an estimate of what a network or a training run will
allocate, against what the machine (or the process's limit) has available.

A network of ``P`` parameters holds them and their gradient (``2P`` numbers) and, while it is
built, one more copy; training adds the optimizer's state (``k P`` for ``k`` state arrays), a
snapshot of weights and state for the divergence roll-back (``(1 + k) P``) and, per chunk of
``r`` rows, the forward values and deltas of every layer (about ``3 r sum(widths)``), plus a
converted copy of the data when its dtype differs from the network's.
"""

from __future__ import annotations

import os

from .errors import DeltapropError
from .i18n import gettext as _, ngettext

__all__ = ["MemoryCheckError", "available_bytes", "require_memory", "format_bytes"]


class MemoryCheckError(DeltapropError, MemoryError):
    """The work would need more memory than is available; nothing was allocated."""


def format_bytes(n: float) -> str:
    for unit, size in ((_("{size} GB"), 1e9), (_("{size} MB"), 1e6), (_("{size} kB"), 1e3)):
        if n >= size:
            return unit.format(size=f"{n / size:.1f}")
    return ngettext("{n} bytes", "{n} bytes", int(n)).format(n=int(n))


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _rlimit_left() -> int | None:
    """What RLIMIT_AS still allows this process to map (None: no limit, or not knowable)."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        return max(soft - mapped, 0)
    except (ImportError, OSError, ValueError, IndexError):
        return None


def _cgroup_left() -> int | None:
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open("/sys/fs/cgroup/memory.current") as f:
            used = int(f.read().strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def available_bytes() -> int | None:
    """The least of: the machine's available memory, the cgroup's room and the address-space
    limit's room; None where none of them can be read (then nothing is refused)."""
    known = [v for v in (_meminfo_available(), _rlimit_left(), _cgroup_left()) if v is not None]
    return min(known) if known else None


#: Below this many bytes the machine is not asked (a fit of a small net asks once per call, and
#: reading /proc and /sys cost about 0.1 ms, more than a small fit's epoch); any process that
#: has imported NumPy has that much to spare. ``DELTAPROP_MEMORY_LIMIT`` is still applied.
UNCHECKED_BYTES = 16 << 20


def require_memory(nbytes: float, what: str) -> None:
    """Raise :class:`MemoryCheckError` ("WHAT needs N GB; M GB available") when ``nbytes``
    exceed what is available. ``DELTAPROP_MEMORY_LIMIT`` (bytes) caps the available amount,
    for tests and shared machines; without it, less than :data:`UNCHECKED_BYTES` is not
    checked."""
    cap = os.environ.get("DELTAPROP_MEMORY_LIMIT")
    if nbytes < UNCHECKED_BYTES and not cap:
        return
    avail = available_bytes()
    if cap:
        try:
            avail = min(int(float(cap)), avail) if avail is not None else int(float(cap))
        except ValueError:
            pass
    if avail is not None and nbytes > avail:
        raise MemoryCheckError(_("{what} needs {need}; {available} available").format(
            what=what, need=format_bytes(nbytes), available=format_bytes(avail)))

