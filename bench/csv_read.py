"""Reading a large CSV: deltaprop's reader against pandas.read_csv, time and peak memory.

    python bench/csv_read.py                  # 500,000 rows x 20 numeric columns (about 95 MB)
    python bench/csv_read.py --rows 50000     # a smaller file
    python bench/csv_read.py --exact          # also the csv-module reader (slow: tens of seconds)

The file is written once (``--file``, default in the temporary folder; seeded). Times: the
readers run in turn, repeats alternating, in this process; each ratio is the median of the
per-repeat ratios reader / pandas. Memory, divided by the size of the arrays a reader returns
(deltaprop: ``X`` and ``T``; pandas: the frame's values), each reader in two fresh processes:
"allocated", the peak of what was allocated while reading (tracemalloc's peak, which sees
NumPy's and Python's allocations, plus the peak of Arrow's own memory pool, which tracemalloc
does not see; pandas' C parser's buffers are seen by neither); "resident", the peak resident
memory above what the process held before reading (``VmHWM`` minus ``VmRSS`` after the
imports, from /proc/self/status; ``ru_maxrss`` would carry the parent's peak across exec), which also counts memory freed but kept by the allocators. The machine's load is printed beside
the figures: other work on a shared machine skews the times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

READERS = ("pandas", "deltaprop/pyarrow", "deltaprop/numpy", "deltaprop/exact")


def write_file(path: str, rows: int, cols: int) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        f.write(",".join([f"x{i}" for i in range(cols - 1)] + ["y"]) + "\n")
        for start in range(0, rows, 50_000):
            block = rng.standard_normal((min(50_000, rows - start), cols))
            np.savetxt(f, block, fmt="%.6f", delimiter=",")


def read(reader: str, path: str):
    """The arrays ``reader`` makes of the file."""
    if reader == "pandas":
        import pandas as pd

        return (pd.read_csv(path).to_numpy(),)
    import deltaprop.data.csvfile as csvfile

    csvfile.READER = reader.split("/")[1]
    ds = csvfile.load_csv(path, "y")
    return ds.X, ds.T


def _status(key: str) -> int:
    """A size from /proc/self/status (VmRSS: resident now, VmHWM: its peak), in bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


def memory_child(reader: str, path: str, how: str) -> None:
    """Run in a fresh process: print the peak memory (``how``: allocated or resident) over the
    arrays' size."""
    import tracemalloc

    import deltaprop.data.csvfile  # noqa: F401 - imports before the baseline
    if reader == "pandas":
        import pandas  # noqa: F401
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        pass
    if how == "allocated":
        tracemalloc.start()
        arrays = read(reader, path)
        peak = tracemalloc.get_traced_memory()[1]
        if "pyarrow" in sys.modules:
            import pyarrow as pa

            peak += pa.default_memory_pool().max_memory()
    else:
        base = _status("VmRSS")
        arrays = read(reader, path)
        peak = _status("VmHWM") - base
    print(f"{peak / sum(a.nbytes for a in arrays):.3f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=500_000)
    p.add_argument("--cols", type=int, default=20)
    p.add_argument("--file", default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--exact", action="store_true", help="include the csv-module reader")
    p.add_argument("--memory-child", nargs=3, metavar=("READER", "FILE", "HOW"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        memory_child(*args.memory_child)
        return 0
    path = args.file or os.path.join(tempfile.gettempdir(), f"deltaprop-bench-{args.rows}x{args.cols}.csv")
    if not os.path.exists(path):
        write_file(path, args.rows, args.cols)
    readers = [r for r in READERS if r != "deltaprop/exact" or args.exact]
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        readers.remove("deltaprop/pyarrow")
    times = {r: [] for r in readers}
    for _ in range(args.repeats):
        for r in readers:
            t0 = time.perf_counter()
            read(r, path)
            times[r].append(time.perf_counter() - t0)
    print(f"{path}: {os.path.getsize(path) / 1e6:.0f} MB, {args.rows} rows x {args.cols} columns; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'reader':<20} {'median s':>9} {'time / pandas':>14} {'allocated / arrays':>19} "
          f"{'resident / arrays':>18}")
    for r in readers:
        ratio = statistics.median(t / p_ for t, p_ in zip(times[r], times["pandas"]))
        mem = [float(subprocess.run([sys.executable, __file__, "--memory-child", r, path, how], check=True,
                                    capture_output=True, text=True).stdout) for how in ("allocated", "resident")]
        print(f"{r:<20} {statistics.median(times[r]):>9.2f} {ratio:>14.2f} {mem[0]:>19.2f} {mem[1]:>18.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
