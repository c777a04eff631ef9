"""The systems the benchmark compares: deltaprop and its peers, each behind one interface.

A system is a class with ``name``, ``available() -> None or the reason it is not`` (checked
in the worker process, so a missing peer skips its rows with a note), ``supports(cell) ->
None or the reason`` and ``prepare(cell, data) -> run`` where ``run()`` performs the cell's
timed work once (one epoch, or the cell's updates) and returns the number of samples it
processed. Preparation (building the model, compiling, warming up) is never timed.

Every system trains the same network from the same kind of data with plain SGD (no
momentum, no weight decay), the same learning rate and batch size, shuffling each epoch.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import logging
import os
import shutil
import time
import warnings

import numpy as np

LR = 0.01


def _one_hot_labels(T):
    return T.argmax(axis=1)


# --------------------------------------------------------------------------- deltaprop
class Deltaprop:
    """deltaprop's public API: ``Trainer(...).fit(X, T, epochs)`` with ``engine="auto"``."""

    name = "deltaprop"

    def __init__(self, engine="auto"):
        self.engine = engine

    def available(self):
        return None

    def supports(self, cell):
        return None

    def prepare(self, cell, data):
        import deltaprop as dp

        X, T = data
        if cell.worked_example:
            from deltaprop.layers import Dense

            layers = [Dense(2, 2, "sigmoid", train_bias=False), Dense(2, 2, "sigmoid", train_bias=False)]
            net = dp.Network.from_layers(layers, "half_sse", dtype=cell.dtype)
            net.set_weights([([[0.15, 0.25], [0.20, 0.30]], 0.35), ([[0.40, 0.50], [0.45, 0.55]], 0.60)])
        else:
            out = "softmax" if cell.loss == "cross_entropy" else cell.activation
            net = dp.Network(cell.sizes, cell.activation, out, cell.loss, dtype=cell.dtype, seed=0)
        mode = "stochastic" if cell.batch == 1 else ("batch" if cell.batch >= len(X) else "minibatch")
        tr = dp.Trainer(net, lr=cell.lr, mode=mode, batch_size=min(cell.batch, len(X)), seed=0,
                        eval_every=0, engine=self.engine, shuffle=cell.shuffle)
        # warm-up (numba compiles or loads its cache here): not timed
        start = net.flat.copy()
        tr.fit(X[: min(len(X), 2 * max(cell.batch, 1) if cell.batch < len(X) else 256)],
               T[: min(len(X), 2 * max(cell.batch, 1) if cell.batch < len(X) else 256)], 1)
        net.flat[...] = start
        self.trainer = tr
        epochs = cell.epochs

        epoch_rates = []

        def run():
            tr.fit(X, T, epochs)
            # the library's own per-epoch clock (history.seconds): the epochs without fit's
            # one-off data check
            epoch_rates.append(len(X) * epochs / sum(tr.history.seconds[-epochs:]))
            return len(X) * epochs

        def info():
            from deltaprop.training import check_data

            t = time.perf_counter()
            check_data(X, T, net)
            rates = sorted(epoch_rates)
            return {"engine": tr.engine_used, "check_data_s": time.perf_counter() - t,
                    "epochs_only_samples_per_s": rates[len(rates) // 2] if rates else None,
                    "final_loss": float(net.evaluate(X[:4096], T[:4096])[0])}

        run.info = info
        return run


# --------------------------------------------------------------------------- plain NumPy
class PlainNumpy:
    """The straightforward vectorised NumPy loop a textbook would write (two layers)."""

    name = "numpy"

    def available(self):
        return None

    def supports(self, cell):
        if cell.worked_example:
            return "frozen biases not written in the reference loop"
        return None if len(cell.sizes) == 3 else "two-layer reference only"

    def prepare(self, cell, data):
        X, T = data
        rng = np.random.default_rng(0)
        dt = np.dtype(cell.dtype)
        n_in, n_h, n_out = cell.sizes
        W1 = (rng.uniform(-1, 1, (n_in, n_h)) * np.sqrt(6 / (n_in + n_h))).astype(dt)
        W2 = (rng.uniform(-1, 1, (n_h, n_out)) * np.sqrt(6 / (n_h + n_out))).astype(dt)
        b1, b2 = np.zeros(n_h, dt), np.zeros(n_out, dt)
        k = min(cell.batch, len(X))
        lr = cell.lr
        relu = cell.activation == "relu"
        ce = cell.loss == "cross_entropy"

        def run():
            nonlocal W1, W2, b1, b2
            order = rng.permutation(len(X)) if cell.shuffle and k < len(X) else np.arange(len(X))
            for e in range(cell.epochs):
                for s in range(0, len(X), k):
                    idx = order[s:s + k]
                    xb, tb = X[idx], T[idx]
                    z1 = xb @ W1 + b1
                    a1 = np.maximum(z1, 0) if relu else 1 / (1 + np.exp(-z1))
                    z2 = a1 @ W2 + b2
                    if ce:
                        e2 = np.exp(z2 - z2.max(axis=1, keepdims=True))
                        out = e2 / e2.sum(axis=1, keepdims=True)
                        d2 = (out - tb) / len(xb)
                    else:
                        out = 1 / (1 + np.exp(-z2))
                        d2 = (out - tb) * out * (1 - out) / len(xb)
                    da1 = d2 @ W2.T
                    d1 = da1 * (z1 > 0) if relu else da1 * a1 * (1 - a1)
                    W2 -= lr * (a1.T @ d2)
                    b2 -= lr * d2.sum(0)
                    W1 -= lr * (xb.T @ d1)
                    b1 -= lr * d1.sum(0)
            return len(X) * cell.epochs

        return run


# --------------------------------------------------------------------------- PyTorch
def _torch_setup(cell, data):
    """The network, trained parameters, optimizer and data of the PyTorch systems (seeded: the
    same initial weights for ``torch`` and ``torch_compile``)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    X, T = data
    dt = torch.float32 if cell.dtype == "float32" else torch.float64
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)
    labels = torch.from_numpy(_one_hot_labels(T)) if cell.loss == "cross_entropy" else None
    layers = []
    sizes = cell.sizes
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, bias=True).to(dt))
        last = i == len(sizes) - 2
        if not last:
            layers.append(nn.ReLU() if cell.activation == "relu" else nn.Sigmoid())
        elif cell.loss != "cross_entropy":
            layers.append(nn.Sigmoid())
    model = nn.Sequential(*layers)
    if cell.worked_example:
        with torch.no_grad():
            model[0].weight.copy_(torch.tensor([[0.15, 0.20], [0.25, 0.30]]))
            model[0].bias.fill_(0.35)
            model[2].weight.copy_(torch.tensor([[0.40, 0.45], [0.50, 0.55]]))
            model[2].bias.fill_(0.60)
        params = [model[0].weight, model[2].weight]
    else:
        params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=cell.lr)
    return model, params, opt, Xt, Tt, labels


def _torch_step(model, opt, Xt, Tt, labels):
    """One idiomatic SGD step on the rows ``idx``: zero_grad, forward, loss, backward, step
    (the eager loop calls it as it is; ``torch_compile`` compiles it)."""
    import torch

    targets = labels if labels is not None else Tt
    ce = torch.nn.CrossEntropyLoss()

    def step(idx):
        opt.zero_grad()
        out = model(Xt[idx])
        if labels is not None:
            loss = ce(out, targets[idx])
        else:
            loss = 0.5 * ((out - targets[idx]) ** 2).sum(1).mean()
        loss.backward()
        opt.step()

    return step


def _torch_run(step, cell, n):
    """The timed work of the PyTorch systems: ``cell.epochs`` shuffled epochs of ``step``."""
    import torch

    k = min(cell.batch, n)

    def run():
        for _ in range(cell.epochs):
            perm = torch.randperm(n) if cell.shuffle and k < n else torch.arange(n)
            for s in range(0, n, k):
                step(perm[s:s + k])
        return n * cell.epochs

    return run


def _torch_info(model, Xt, Tt, labels):
    """``run.info()`` of the PyTorch systems: the loss on the first 4,096 samples (not timed)."""
    import torch

    def info():
        with torch.no_grad():
            out = model(Xt[:4096])
            if labels is not None:
                loss = torch.nn.functional.cross_entropy(out, labels[:4096])
            else:
                loss = 0.5 * ((out - Tt[:4096]) ** 2).sum(1).mean()
        return {"final_loss": float(loss)}

    return info


class Torch:
    """The idiomatic PyTorch loop: nn.Sequential, optim.SGD, zero_grad/backward/step."""

    name = "torch"

    def available(self):
        return None if importlib.util.find_spec("torch") else "PyTorch not installed"

    def supports(self, cell):
        return None

    def prepare(self, cell, data):
        X, _ = data
        model, _, opt, Xt, Tt, labels = _torch_setup(cell, data)
        run = _torch_run(_torch_step(model, opt, Xt, Tt, labels), cell, len(X))
        run.info = _torch_info(model, Xt, Tt, labels)
        return run


class _DropDynamoProfilerNote(logging.Filter):
    """Dynamo logs "Profiler record function ... will be ignored" once when it traces
    ``optimizer.step()`` (a profiling annotation inside it): harmless, and not for the table."""

    def filter(self, record):
        return not str(record.msg).startswith("Profiler record function")


class TorchCompile(Torch):
    """``torch.compile`` (inductor, the default backend) on the same network, initial weights,
    SGD, shuffling and loss as ``torch``, in the fastest idiomatic form measured here: one
    compiled train step per batch, ``step(idx)``, that gathers the batch from the data by its
    indices (as the JAX peer does inside its jitted epoch) and runs forward, loss,
    ``backward()`` and ``opt.step()``. Dynamo breaks the graph at ``backward()``: forward + loss
    run as one inductor graph with its compiled backward, the optimizer step as a second graph.

    Variants tried on W1a-256 at 1 thread (one process, alternating, median of 3 epochs on a
    shared 2-core machine: differences under about 10% are noise): the eager loop
    156k samples/s; the model compiled alone 142k; the model plus a compiled ``opt.step()``
    132k; forward + loss compiled plus a compiled ``opt.step()`` 151k; the whole step compiled
    but given the gathered batch 162k; this one 184k (on W1b-256: level with eager). At full
    batch all of them were within 5% of each other outside the benchmark (the GEMMs dominate).

    ``dynamic=False``: one specialised graph per batch shape. The warm-up in ``prepare`` compiles
    every shape the timed run sees (the batch and the last partial batch of an epoch), then
    puts back the initial weights and the RNG state (so the timed epochs start where the eager
    ``torch`` loop starts), and recompiling is made an error, so a timed run never compiles.
    Batched cells only (mini-batch >= 32 and full batch)."""

    name = "torch_compile"

    def available(self):
        why = super().available()
        if why:
            return why
        cxx = os.environ.get("CXX")
        if not (shutil.which(cxx) if cxx else (shutil.which("g++") or shutil.which("c++"))):
            return "no C++ compiler (inductor compiles C++ kernels on CPU)"
        return None

    def supports(self, cell):
        if cell.workload != "W1" or cell.batch < 32:
            return "per-step overhead: torch.compile is for batched work"
        return None

    def prepare(self, cell, data):
        import torch
        import torch._dynamo

        dynamo_log = logging.getLogger("torch._dynamo.variables.ctx_manager")
        if not any(isinstance(f, _DropDynamoProfilerNote) for f in dynamo_log.filters):
            dynamo_log.addFilter(_DropDynamoProfilerNote())
        # a fresh start per cell: the step below is one code object for every cell, and each
        # cell's graphs would otherwise count towards Dynamo's recompile limit
        torch._dynamo.reset()
        torch._dynamo.config.error_on_recompile = False
        X, _ = data
        model, params, opt, Xt, Tt, labels = _torch_setup(cell, data)
        step = torch.compile(_torch_step(model, opt, Xt, Tt, labels), dynamic=False)

        n = len(X)
        k = min(cell.batch, n)
        start = [p.detach().clone() for p in params]
        rng = torch.get_rng_state()
        for size in sorted({k, n % k} - {0}, reverse=True):  # warm-up, not timed
            for _ in range(2):
                step(torch.arange(size))
        with torch.no_grad():
            for p, p0 in zip(params, start):
                p.copy_(p0)
        opt.zero_grad()
        torch.set_rng_state(rng)
        torch._dynamo.config.error_on_recompile = True
        run = _torch_run(step, cell, n)

        run.info = _torch_info(model, Xt, Tt, labels)
        return run


# --------------------------------------------------------------------------- scikit-learn
class Sklearn:
    """scikit-learn's MLP with solver="sgd" (MLPClassifier for softmax + cross-entropy;
    MLPRegressor, squared error, for the half-SSE cells), one epoch per fit."""

    name = "sklearn"

    def available(self):
        return None if importlib.util.find_spec("sklearn") else "scikit-learn not installed"

    def supports(self, cell):
        if cell.worked_example:
            return "no frozen biases"
        return None if len(cell.sizes) == 3 else "one hidden layer only in this benchmark"

    def prepare(self, cell, data):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        X, T = data
        act = "logistic" if cell.activation == "sigmoid" else cell.activation
        kw = dict(hidden_layer_sizes=(cell.sizes[1],), activation=act, solver="sgd",
                  batch_size=min(cell.batch, len(X)), learning_rate_init=cell.lr, momentum=0.0,
                  nesterovs_momentum=False, alpha=0.0, max_iter=cell.epochs, shuffle=cell.shuffle,
                  tol=0.0, n_iter_no_change=10**9, random_state=0)
        if cell.loss == "cross_entropy":
            y = _one_hot_labels(T)
            model = MLPClassifier(**kw)
        else:
            y = T if T.shape[1] > 1 else T.ravel()
            model = MLPRegressor(**kw)

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X, y)
            return len(X) * cell.epochs

        return run


# --------------------------------------------------------------------------- JAX
class Jax:
    """JAX with the whole epoch jitted as one ``lax.scan`` over the batches (the fastest way
    to run many small updates in JAX). A batch size that does not divide N drops the last
    partial batch; the samples counted are those trained on."""

    name = "jax"

    def available(self):
        return None if importlib.util.find_spec("jax") else "JAX not installed"

    def supports(self, cell):
        if cell.worked_example:
            return None
        return None if len(cell.sizes) == 3 else "two-layer benchmark net only"

    def prepare(self, cell, data):
        import jax
        import jax.numpy as jnp

        if cell.dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        X, T = data
        n = len(X)
        k = min(cell.batch, n)
        nb = n // k
        rng = np.random.default_rng(0)
        dt = np.dtype(cell.dtype)
        n_in, n_h, n_out = cell.sizes
        if cell.worked_example:
            params = [np.array([[0.15, 0.25], [0.20, 0.30]], dt), np.full(2, 0.35, dt),
                      np.array([[0.40, 0.50], [0.45, 0.55]], dt), np.full(2, 0.60, dt)]
        else:
            params = [(rng.uniform(-1, 1, (n_in, n_h)) * np.sqrt(6 / (n_in + n_h))).astype(dt),
                      np.zeros(n_h, dt),
                      (rng.uniform(-1, 1, (n_h, n_out)) * np.sqrt(6 / (n_h + n_out))).astype(dt),
                      np.zeros(n_out, dt)]
        relu = cell.activation == "relu"
        ce = cell.loss == "cross_entropy"
        frozen_bias = cell.worked_example
        lr = cell.lr

        def loss_fn(p, xb, tb):
            W1, b1, W2, b2 = p
            h = xb @ W1 + b1
            h = jax.nn.relu(h) if relu else jax.nn.sigmoid(h)
            z = h @ W2 + b2
            if ce:
                return -(tb * jax.nn.log_softmax(z)).sum(1).mean()
            o = jax.nn.sigmoid(z)
            return 0.5 * ((o - tb) ** 2).sum(1).mean()

        grad = jax.grad(loss_fn)

        def step(p, batch):
            xb, tb = batch
            g = grad(p, xb, tb)
            if frozen_bias:
                g = [g[0], g[1] * 0, g[2], g[3] * 0]
            return [w - lr * gw for w, gw in zip(p, g)], None

        @jax.jit
        def epoch(p, X, T, perm):
            xs = jnp.take(X, perm[: nb * k], axis=0).reshape(nb, k, -1)
            ts = jnp.take(T, perm[: nb * k], axis=0).reshape(nb, k, -1)
            p, _ = jax.lax.scan(step, p, (xs, ts))
            return p

        Xj, Tj = jax.device_put(X), jax.device_put(T)
        state = {"p": [jax.device_put(w) for w in params]}
        perm0 = np.arange(n)
        jax.block_until_ready(epoch(state["p"], Xj, Tj, perm0))  # compile: not timed

        def run():
            for _ in range(cell.epochs):
                perm = rng.permutation(n) if cell.shuffle and k < n else perm0
                state["p"] = epoch(state["p"], Xj, Tj, perm)
            jax.block_until_ready(state["p"])
            return nb * k * cell.epochs

        return run


# --------------------------------------------------------------------------- FANN
class _TrainData(ctypes.Structure):
    _fields_ = [("errno_f", ctypes.c_int), ("error_log", ctypes.c_void_p),
                ("errstr", ctypes.c_char_p), ("num_data", ctypes.c_uint),
                ("num_input", ctypes.c_uint), ("num_output", ctypes.c_uint),
                ("input", ctypes.c_void_p), ("output", ctypes.c_void_p)]


class Fann:
    """FANN 2.2 through its C library (ctypes): fann_train_epoch, incremental (per-sample)
    or batch training, sigmoid units, linear error function, data shuffled each epoch."""

    name = "fann"
    _SIGMOID, _INCREMENTAL, _BATCH, _ERR_LINEAR = 3, 0, 1, 0

    def _lib(self, dtype):
        name = {"float32": "floatfann", "float64": "doublefann"}[dtype]
        path = ctypes.util.find_library(name)
        return ctypes.CDLL(path) if path else None

    def available(self):
        return None if ctypes.util.find_library("floatfann") else "libfann not installed"

    def supports(self, cell):
        if cell.loss != "half_sse" or cell.activation != "sigmoid":
            return "FANN has no softmax / cross-entropy"
        if 1 < cell.batch < cell.n:
            return "FANN has no mini-batch mode"
        return None

    def prepare(self, cell, data):
        lib = self._lib(cell.dtype)
        X, T = data
        n = len(X)
        ftype = ctypes.c_float if cell.dtype == "float32" else ctypes.c_double
        lib.fann_create_standard.restype = ctypes.c_void_p
        lib.fann_create_train.restype = ctypes.POINTER(_TrainData)
        sizes = cell.sizes
        ann = lib.fann_create_standard(ctypes.c_uint(len(sizes)), *[ctypes.c_uint(s) for s in sizes])
        ann = ctypes.c_void_p(ann)
        lib.fann_set_activation_function_hidden(ann, self._SIGMOID)
        lib.fann_set_activation_function_output(ann, self._SIGMOID)
        lib.fann_set_train_error_function(ann, self._ERR_LINEAR)
        lib.fann_set_learning_rate.argtypes = [ctypes.c_void_p, ctypes.c_float]
        lib.fann_set_learning_rate(ann, cell.lr)
        lib.fann_randomize_weights.argtypes = [ctypes.c_void_p, ftype, ftype]
        lib.fann_randomize_weights(ann, -0.1, 0.1)
        lib.fann_set_training_algorithm(ann, self._INCREMENTAL if cell.batch == 1 else self._BATCH)
        td = lib.fann_create_train(ctypes.c_uint(n), ctypes.c_uint(sizes[0]), ctypes.c_uint(sizes[-1]))
        # fann_create_train allocates one contiguous block per side; input[0] points at it
        ins = ctypes.cast(td.contents.input, ctypes.POINTER(ctypes.c_void_p))[0]
        outs = ctypes.cast(td.contents.output, ctypes.POINTER(ctypes.c_void_p))[0]
        Xc = np.ascontiguousarray(X, dtype=cell.dtype)
        Tc = np.ascontiguousarray(T, dtype=cell.dtype)
        ctypes.memmove(ins, Xc.ctypes.data, Xc.nbytes)
        ctypes.memmove(outs, Tc.ctypes.data, Tc.nbytes)
        lib.fann_train_epoch.restype = ctypes.c_float
        self._keep = (lib, ann, td)

        def run():
            for _ in range(cell.epochs):
                if cell.shuffle and cell.batch < n:
                    lib.fann_shuffle_train_data(td)
                lib.fann_train_epoch(ann, td)
            return n * cell.epochs

        return run


SYSTEMS = {cls.name: cls for cls in (Deltaprop, PlainNumpy, Torch, TorchCompile, Sklearn, Jax, Fann)}

# DELTAPROP_BENCH_HIDE=torch,jax makes those peers report themselves missing: the smoke test
# checks the "missing peer" path with it whatever happens to be installed. Hiding torch hides
# torch_compile too (it asks Torch.available first), as when PyTorch is not installed.
_HIDDEN = set(filter(None, os.environ.get("DELTAPROP_BENCH_HIDE", "").split(",")))
for _name in _HIDDEN & set(SYSTEMS):
    SYSTEMS[_name].available = lambda self: "hidden by DELTAPROP_BENCH_HIDE"
