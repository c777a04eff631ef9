r"""Per-sample epochs of tiny networks (XOR 2-2-1, the worked example 2-2-2) as generated code.

In a net with a few dozen weights the general per-sample kernel spends its time on latency:
every unit's value goes through a small array in memory and every loop has a trip count
known only at run time. Here the epoch is written out for one network's exact shape: every
weight, bias and velocity is a local variable (so it lives in a register for the whole
epoch), every sum is written out, and every branch on the set-up (activation, loss,
optimizer, biases) is taken while the source is written, not per sample. XOR 2-2-1 runs at
about twice the general kernel's updates per second (docs/performance.md).

The formulas are not written here: the generated source calls the compiled scalar functions of
:mod:`._maths` (activation, loss and update rule, each with its code as a constant, so that
numba inlines it and LLVM drops the other branches), in the general kernel's order of
summation, so the weights equal the NumPy engine's up to that rounding, and the same tests
hold it to that.

The source for one set-up is written to a per-user cache directory and imported from there,
so that numba can cache the compiled code on disk like any other kernel (numba caches only
functions defined in a file). The file is rewritten whenever its content differs from the
source this version generates. Where no directory can be written, the kernel is compiled
from the source in memory, without an on-disk cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
from functools import lru_cache

from .codes import (C_EPS, C_HALF, C_LR, C_MSE, C_MU, C_ONE, C_ZERO, CE, HALF_SSE, PLAIN, SIGMOID,
                    SOFTMAX)

__all__ = ["MAX_WEIGHTS", "spec_for", "kernel_for", "source_for"]

#: Largest number of weights (all layers) written out as locals. Measured against the general
#: kernel (stochastic, 1 thread): 1.3-1.4x at 6 and 64 weights, 0.96x at 192 and 0.6x at
#: 320, where the registers have run out; the first compile takes 1.7 s at 64 weights and
#: 5 s at 192 (after that numba loads it from disk).
MAX_WEIGHTS = 64
MAX_LAYERS = 3


def spec_for(sizes, lay, loss, fused, kind):
    """The hashable set-up a kernel is written for, or None if the net is not tiny.

    ``sizes``: units per layer, input first; ``lay``: rows (has_bias, train_bias, act code).
    (The activations' parameters, as the flat spot, are arguments of the kernel, not part of
    its code.)
    """
    n_layers = len(sizes) - 1
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    if n_layers > MAX_LAYERS or weights > MAX_WEIGHTS:
        return None
    layers = []
    for l in range(n_layers):
        has_b, train_b, act = (int(v) for v in lay[l])
        if act == SOFTMAX and l < n_layers - 1:
            return None  # a softmax hidden layer: rare, left to the general kernel
        layers.append((has_b, train_b, act))
    return (tuple(int(s) for s in sizes), tuple(layers), int(loss), bool(fused), int(kind))


class _Src:
    """A source file under construction: lines at an indentation level."""

    def __init__(self):
        self.lines = []
        self.ind = 0

    def __call__(self, line=""):
        self.lines.append("    " * self.ind + line if line else "")

    def text(self):
        return "\n".join(self.lines) + "\n"


def _sum(terms) -> str:
    """A sum written out left to right (the general kernel's order of summation)."""
    return " + ".join(terms)


def _activation(o, act, z, a, n, p):
    """Lines computing a_j = f(z_j) for one layer of n units (_maths.activation, or the
    softmax from _maths.softmax_term; ``m`` and ``sm``, the row's maximum and sum of terms,
    stay for the loss)."""
    if act == SOFTMAX:
        o(f"m = {z}0")
        for j in range(1, n):
            o(f"m = {z}{j} if {z}{j} > m else m")
        for j in range(n):
            o(f"{a}{j} = softmax_term({z}{j}, m)")
        o("sm = " + _sum(f"{a}{j}" for j in range(n)))
        for j in range(n):
            o(f"{a}{j} = {a}{j} / sm")
        return
    for j in range(n):
        o(f"{a}{j} = activation({act}, {z}{j}, {p}, one, zero)")


def _derivative(o, act, z, a, d, n, p):
    """Lines turning d_j = dE/da_j into dE/dz_j (as _numba_kernels._hidden_delta)."""
    if act == SOFTMAX:
        o("sd = " + _sum(f"{d}{j} * {a}{j}" for j in range(n)))
        for j in range(n):
            o(f"{d}{j} = softmax_vjp({a}{j}, {d}{j}, sd)")
        return
    for j in range(n):
        o(f"{d}{j} = activation_vjp({act}, {z}{j}, {a}{j}, {d}{j}, {p}, one, zero)")


def _loss(o, loss, fused, act, n, p, L):
    """Lines for the per-sample loss ``value`` (a float) and the output deltas d{L}_j
    (as _numba_kernels._output_loss_delta)."""
    z, a, d = f"z{L}_", f"a{L}_", f"d{L}_"
    for j in range(n):
        o(f"t{j} = T[r, {j}]")
    ts = lse = "zero"
    if loss == CE:
        o("ts = " + _sum(f"t{j}" for j in range(n)))
        ts = "ts"
        if act == SOFTMAX:  # m and sm from the forward pass
            o("lse = log_sum_exp(m, sm)")
            lse = "lse"
    o("s = " + _sum(f"loss_term({loss}, {act}, {z}{j}, {a}{j}, t{j}, {lse}, eps, one, zero)"
                    for j in range(n)))
    o(f"value = loss_value({loss}, s, {n}, half)")
    for j in range(n):
        o(f"{d}{j} = loss_delta({loss}, {fused}, {a}{j}, t{j}, {ts}, cmse, eps, one)")
    if not fused:
        _derivative(o, act, z, a, d, n, p)


def _step(o, w, v, g, kind):
    """Lines for one parameter's update with gradient expression g (_maths.sgd_step; under
    plain SGD no velocity exists and ``zero`` stands in)."""
    if kind == PLAIN:
        o(f"{w}, _ = sgd_step({w}, zero, {g}, lr, mu, {kind})")
    else:
        o(f"{w}, {v} = sgd_step({w}, {v}, {g}, lr, mu, {kind})")


@lru_cache(maxsize=None)
def _maths_stamp() -> str:
    """A hash of the files whose code a generated kernel inlines: numba checks only a
    kernel's own file before it loads a cached compile, so the stamp goes into the source
    (and so into the file's name) and an edit of the maths makes a new file."""
    here = os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha1()
    for name in ("_maths.py", "codes.py"):
        with open(os.path.join(here, name), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:16]


def source_for(spec) -> str:
    """The Python source of the kernel ``epoch`` for ``spec`` (see :func:`spec_for`)."""
    sizes, layers, loss, fused, kind = spec
    L = len(layers)
    o = _Src()
    o(f"# deltaprop tiny-net kernel, generated by deltaprop.engines.tiny_kernels for {spec!r}")
    o(f"# maths: deltaprop.engines._maths and codes, {_maths_stamp()}")
    o("import math")
    o("from numba import njit")
    o("from deltaprop.engines._maths import (activation, activation_vjp, log_sum_exp, loss_delta,")
    o("                                     loss_term, loss_value, sgd_step, softmax_term,")
    o("                                     softmax_vjp)")
    o()
    o()
    args = ["X", "T", "order"]
    for l in range(L):
        args += [f"W{l}", f"B{l}", f"VW{l}", f"VB{l}"]
    o("@njit(cache=True, nogil=True, error_model='numpy')")
    o(f"def epoch({', '.join(args)}, actp, c, n_updates):")
    o.ind = 1
    o(f"lr, mu, one, zero, half = c[{C_LR}], c[{C_MU}], c[{C_ONE}], c[{C_ZERO}], c[{C_HALF}]")
    o(f"eps, cmse = c[{C_EPS}], c[{C_MSE}]")
    o("running = 0.0")
    o("bad = 0")
    o("done = n_updates")
    params = []  # (local, array expression) of every parameter loaded into a local
    for l, (has_b, train_b, act) in enumerate(layers):
        o(f"p{l} = actp[{l}]")
        for i in range(sizes[l]):
            for j in range(sizes[l + 1]):
                params.append((f"w{l}_{i}_{j}", f"W{l}[{i}, {j}]"))
                if kind != PLAIN:
                    params.append((f"v{l}_{i}_{j}", f"VW{l}[{i}, {j}]"))
        if has_b:
            for j in range(sizes[l + 1]):
                params.append((f"b{l}_{j}", f"B{l}[{j}]"))
                if kind != PLAIN and train_b:
                    params.append((f"vb{l}_{j}", f"VB{l}[{j}]"))
    for local, ref in params:
        o(f"{local} = {ref}")
    o("for k in range(n_updates):")
    o.ind = 2
    o("r = order[k]")
    for i in range(sizes[0]):
        o(f"a_{i} = X[r, {i}]")  # the input is layer -1's activation
    prev = "a_"
    for l, (has_b, train_b, act) in enumerate(layers):
        for j in range(sizes[l + 1]):
            # z = x W then z += b, as layers.Dense
            o(f"z{l}_{j} = " + _sum(f"{prev}{i} * w{l}_{i}_{j}" for i in range(sizes[l])))
            if has_b:
                o(f"z{l}_{j} = z{l}_{j} + b{l}_{j}")
        _activation(o, act, f"z{l}_", f"a{l}_", sizes[l + 1], f"p{l}")
        prev = f"a{l}_"
    top = layers[-1]
    _loss(o, loss, fused, top[2], sizes[-1], f"p{L - 1}", L - 1)
    o("if not math.isfinite(value):")
    o("    bad = k + 1")
    o("    done = k")
    o("    break")
    o("running += value")
    # deltas of the lower layers, with the old weights
    for l in range(L - 1, 0, -1):
        act = layers[l - 1][2]
        for i in range(sizes[l]):
            o(f"d{l - 1}_{i} = " + _sum(f"w{l}_{i}_{j} * d{l}_{j}" for j in range(sizes[l + 1])))
        _derivative(o, act, f"z{l - 1}_", f"a{l - 1}_", f"d{l - 1}_", sizes[l], f"p{l - 1}")
    # then every update
    for l, (has_b, train_b, act) in enumerate(layers):
        below = "a_" if l == 0 else f"a{l - 1}_"
        for i in range(sizes[l]):
            for j in range(sizes[l + 1]):
                _step(o, f"w{l}_{i}_{j}", f"v{l}_{i}_{j}", f"{below}{i} * d{l}_{j}", kind)
        if has_b and train_b:
            for j in range(sizes[l + 1]):
                _step(o, f"b{l}_{j}", f"vb{l}_{j}", f"d{l}_{j}", kind)
    o.ind = 1
    for local, ref in params:
        o(f"{ref} = {local}")
    o("return running, bad, done")
    return o.text()


_LOADED: dict = {}
_LOCK = threading.Lock()


def _private(path: str) -> bool:
    """Whether only this user (or root) can change what ``path`` holds: it and every
    directory above it owned by this user or root, and none writable by others, unless a
    parent has the sticky bit (as /tmp), where others cannot replace what we own. Without
    POSIX owners (Windows) there is nothing to check."""
    if not hasattr(os, "getuid"):
        return True
    uid = os.getuid()
    p = os.path.abspath(path)
    leaf = True
    while True:
        st = os.stat(p)
        if st.st_uid not in (uid, 0):
            return False
        if st.st_mode & 0o022 and (leaf or not st.st_mode & 0o1000):
            return False
        parent = os.path.dirname(p)
        if parent == p:
            return True
        p, leaf = parent, False


def _cache_dir() -> str | None:
    """A directory only this user can write, for the generated sources (None: none found)."""
    candidates = []
    if os.environ.get("DELTAPROP_KERNEL_DIR"):
        candidates.append(os.environ["DELTAPROP_KERNEL_DIR"])
    home = os.path.expanduser("~")
    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(home, ".cache") if home != "~" else None)
    if base:
        candidates.append(os.path.join(base, "deltaprop", "kernels"))
    try:
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        candidates.append(os.path.join(tempfile.gettempdir(), f"deltaprop-kernels-{uid}"))
    except OSError:  # no usable temporary directory at all
        pass
    for path in candidates:
        try:
            os.makedirs(path, mode=0o700, exist_ok=True)
            # a directory others can change could hand us code (numba's cache index is a
            # pickle): not used
            if _private(path) and os.access(path, os.W_OK):
                return path
        except OSError:
            continue
    return None


def _write_if_changed(path: str, text: str) -> None:
    data = text.encode("utf-8")
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return
    except OSError:
        pass
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def kernel_for(spec):
    """The compiled ``epoch`` kernel for ``spec`` (written, imported and cached once)."""
    fn = _LOADED.get(spec)
    if fn is not None:
        return fn
    with _LOCK:
        fn = _LOADED.get(spec)
        if fn is None:
            fn = _LOADED[spec] = _load(spec)
    return fn


def _load(spec):
    text = source_for(spec)
    name = "deltaprop_tiny_" + hashlib.sha1(text.encode()).hexdigest()[:20]
    directory = _cache_dir()
    if directory is not None:
        path = os.path.join(directory, name + ".py")
        try:
            _write_if_changed(path, text)
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            # registered before it runs: numba's disk cache finds a kernel's module by name
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
            return module.epoch
        except Exception:  # noqa: BLE001 (an unreadable file, a cache numba cannot write, ...)
            sys.modules.pop(name, None)
    # no usable directory: compile from memory, without numba's disk cache
    namespace = {"__name__": name}
    exec(compile(text.replace("cache=True", "cache=False"), f"<{name}>", "exec"), namespace)
    return namespace["epoch"]


def _main(argv):  # python -m deltaprop.engines.tiny_kernels 2,2,1: print a kernel's source
    sizes = [int(v) for v in (argv[1] if len(argv) > 1 else "2,2,1").split(",")]
    lay = [(1, 1, SIGMOID)] * (len(sizes) - 1)
    print(source_for(spec_for(sizes, lay, HALF_SSE, False, PLAIN)))


if __name__ == "__main__":
    _main(sys.argv)
