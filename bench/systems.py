"""The systems the benchmark compares: deltaprop and its peers, each behind one interface.

A system is a class with ``name``, ``available() -> None or the reason it is not`` (checked
in the worker process, so a missing peer skips its rows with a note), ``supports(cell) ->
None or the reason`` and ``prepare(cell, data) -> run`` where ``run()`` performs the cell's
timed work once (one epoch, or the cell's updates) and returns the number of samples it
processed. Preparation (building the model, compiling, warming up) is never timed.

Every system trains the same network from the same kind of data with the cell's update
rule (plain SGD unless the cell names another: momentum, Adam, the RPROP family), the same
learning rate and batch size, shuffling each epoch. A system that lacks the rule skips the
cell with a note.
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


def _initial_params(cell, rng):
    """``[W1, b1, W2, b2, ...]`` of the cell's net in its dtype: Glorot-uniform weights, zero
    biases (the NumPy loop's and JAX's)."""
    dt = np.dtype(cell.dtype)
    params = []
    for a, b in zip(cell.sizes[:-1], cell.sizes[1:]):
        params += [(rng.uniform(-1, 1, (a, b)) * np.sqrt(6 / (a + b))).astype(dt), np.zeros(b, dt)]
    return params


# --------------------------------------------------------------------------- deltaprop
def _dp_optimizer(cell):
    from deltaprop.optimizers import get_optimizer

    return get_optimizer(cell.optimizer, lr=cell.lr, **cell.opt_kw)


class Deltaprop:
    """deltaprop's public API with everything named: a ``Network`` of the cell's dtype and
    ``Trainer(..., eval_every=0, engine="auto").fit(X, T, epochs)``."""

    name = "deltaprop"

    def __init__(self, engine="auto"):
        self.engine = engine

    def available(self):
        return None

    def supports(self, cell):
        return None

    def _build(self, cell, X, T):
        """``(trainer, X, T)``: the trainer the timed runs call ``fit`` on, and its data."""
        import deltaprop as dp

        if cell.worked_example:
            from deltaprop.layers import Dense

            layers = [Dense(2, 2, "sigmoid", train_bias=False), Dense(2, 2, "sigmoid", train_bias=False)]
            net = dp.Network.from_layers(layers, "half_sse", dtype=cell.dtype)
            net.set_weights([([[0.15, 0.25], [0.20, 0.30]], 0.35), ([[0.40, 0.50], [0.45, 0.55]], 0.60)])
        else:
            net = dp.Network(cell.sizes, cell.activation, cell.out_activation, cell.loss, dtype=cell.dtype, seed=0)
        tr = dp.Trainer(net, _dp_optimizer(cell), mode=cell.mode, batch_size=min(cell.batch, len(X)), seed=0,
                        eval_every=0, engine=self.engine, shuffle=cell.shuffle)
        return tr, X, T

    def prepare(self, cell, data):
        tr, X, T = self._build(cell, *data)
        net = tr.network
        # warm-up, not timed: numba compiles or loads its cached kernels here, as JAX and
        # torch.compile compile in theirs. Under engine="auto" the warm-up runs the compiled
        # engine where it can run the cell, so that the timed fits, like any fit in a process
        # that has run those kernels once, count no start-up (engines.worth_compiling); the
        # start-up of a fresh process is measured on its own (run.py's measure_startup).
        from deltaprop.engines.numba_engine import NumbaEngine

        start = net.flat.copy()
        rows = min(len(X), 2 * max(cell.batch, 1) if cell.batch < len(X) else 256)
        engine = tr.engine
        if engine == "auto" and NumbaEngine().unsupported(tr) is None:
            tr.engine = "numba"
        tr.fit(X[:rows], T[:rows], 1)
        tr.engine = engine
        net.flat[...] = start
        self.trainer = tr
        epochs = cell.epochs

        epoch_rates = []

        def run():
            done = len(tr.history.seconds)
            tr.fit(X, T, epochs)
            # the epochs that ran (a run that stops on divergence counts only those), and the
            # library's own per-epoch clock (history.seconds): the epochs without fit's one-off
            # data check
            seconds = tr.history.seconds[done:]
            if not seconds:
                raise RuntimeError("fit ran no epoch")
            epoch_rates.append(len(X) * len(seconds) / sum(seconds))
            return len(X) * len(seconds)

        def info():
            from deltaprop.training import check_data

            t = time.perf_counter()
            check_data(X, T, net)
            rates = sorted(epoch_rates)
            return {"engine": tr.engine_used, "dtype": str(net.dtype), "eval_every": tr.eval_every,
                    "check_data_s": time.perf_counter() - t,
                    "epochs_only_samples_per_s": rates[len(rates) // 2] if rates else None,
                    "final_loss": float(net.evaluate(X[:4096], T[:4096])[0])}

        run.info = info
        return run


class DeltapropDefaults(Deltaprop):
    """What a user gets who names only the network, mode, batch size, optimizer and learning
    rate: ``deltaprop.model.build_training`` (what ``deltaprop train`` and ``fit_dataset`` use)
    with every other setting left to ``deltaprop.config.DEFAULTS`` -- its dtype, its per-epoch
    evaluation of the training loss (and accuracy), its engine, its standardisation of the
    inputs -- so the cell follows the defaults whatever they become. The data reach ``fit`` as a
    user's would: float32 arrays, converted or not as the library decides."""

    name = "deltaprop_defaults"

    def supports(self, cell):
        return None if cell.defaults else "no defaults cell for this workload"

    def _build(self, cell, X, T):
        from deltaprop.data.dataset import Dataset
        from deltaprop.model import build_training

        task = "regression" if cell.out_activation == "identity" else "classification"
        _, tr, (X, T), _ = build_training(
            Dataset(X, T, task), hidden=cell.sizes[1:-1], activation=cell.activation,
            output_activation=cell.out_activation, loss=cell.loss, mode=cell.mode,
            batch_size=min(cell.batch, len(X)), optimizer=_dp_optimizer(cell), lr=cell.lr)
        return tr, X, T


# --------------------------------------------------------------------------- plain NumPy
#: Hidden activations of the NumPy loop: f(z), and f'(z) from z and a = f(z).
_NP_ACTIVATIONS = {
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z, a: a * (1 - a)),
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: z > 0),
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
}


def _numpy_rule(cell):
    """``step(i, p, g)``: the cell's update of parameter array ``i`` in place, as a textbook
    writes it (plain SGD, momentum ``v = mu v - lr g; p += v``, Adam with bias correction);
    None where the loop has no such rule."""
    lr, state = cell.lr, {}
    if cell.optimizer == "sgd" and not cell.opt_kw:
        def step(i, p, g):
            p -= lr * g
    elif cell.optimizer == "sgd" and set(cell.opt_kw) == {"momentum"}:
        mu = cell.opt_kw["momentum"]

        def step(i, p, g):
            v = state.setdefault(i, np.zeros_like(p))
            v *= mu
            v -= lr * g
            p += v
    elif cell.optimizer == "adam" and not cell.opt_kw:
        b1, b2, eps = 0.9, 0.999, 1e-8

        def step(i, p, g):
            m, v, t = state.get(i) or (np.zeros_like(p), np.zeros_like(p), 0)
            t += 1
            state[i] = (m, v, t)
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    else:
        return None
    return step


class PlainNumpy:
    """The straightforward vectorised NumPy loop a textbook would write, any depth: forward
    through the layers, backward from the output delta, each layer updated once its delta for
    the layer below is out."""

    name = "numpy"

    def available(self):
        return None

    def supports(self, cell):
        if cell.worked_example:
            return "frozen biases not written in the reference loop"
        return None if _numpy_rule(cell) else f"no {cell.optimizer} in the reference loop"

    def prepare(self, cell, data):
        X, T = data
        rng = np.random.default_rng(0)
        params = _initial_params(cell, rng)
        Ws, bs = params[0::2], params[1::2]
        f, fprime = _NP_ACTIVATIONS[cell.activation]
        step = _numpy_rule(cell)
        k = min(cell.batch, len(X))
        out_act, loss = cell.out_activation, cell.loss

        def output_delta(z, tb):
            if out_act == "softmax":  # with cross-entropy
                e = np.exp(z - z.max(axis=1, keepdims=True))
                return (e / e.sum(axis=1, keepdims=True) - tb) / len(tb)
            if out_act == "identity":  # with the mean squared error
                return 2 * (z - tb) / tb.size
            out = 1 / (1 + np.exp(-z))  # sigmoid with half-SSE
            return (out - tb) * out * (1 - out) / len(tb)

        def run():
            for _ in range(cell.epochs):
                order = rng.permutation(len(X)) if cell.shuffle and k < len(X) else np.arange(len(X))
                for s in range(0, len(X), k):
                    idx = order[s:s + k]
                    xb, tb = X[idx], T[idx]
                    zs, acts = [], [xb]
                    for W, b in zip(Ws, bs):
                        zs.append(acts[-1] @ W + b)
                        if len(zs) < len(Ws):
                            acts.append(f(zs[-1]))
                    d = output_delta(zs[-1], tb)
                    for i in reversed(range(len(Ws))):
                        gW, gb = acts[i].T @ d, d.sum(0)
                        if i:
                            d = (d @ Ws[i].T) * fprime(zs[i - 1], acts[i])
                        step(2 * i, Ws[i], gW)
                        step(2 * i + 1, bs[i], gb)
            return len(X) * cell.epochs

        return run


# --------------------------------------------------------------------------- PyTorch
#: The RPROP family: torch.optim.Rprop (and optax.rprop) is the peer of each of them. Both
#: are one rule, the gradient taken as zero after a sign change and no weight-backtracking
#: (iRprop-); the cost of an update is the same elementwise pass in all four.
RPROP_FAMILY = ("rprop-", "rprop+", "irprop-", "irprop+")


def _torch_rule(cell):
    """``(torch.optim class name, its arguments)`` of the cell's update rule, or None."""
    if cell.optimizer == "sgd" and set(cell.opt_kw) <= {"momentum"}:
        return "SGD", {"lr": cell.lr, "momentum": cell.opt_kw.get("momentum", 0.0)}
    if cell.optimizer == "adam" and not cell.opt_kw:
        return "Adam", {"lr": cell.lr}
    if cell.optimizer in RPROP_FAMILY and not cell.opt_kw:
        # the step-size factors and bounds are deltaprop's defaults too
        return "Rprop", {"lr": cell.lr, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0)}
    return None


def _torch_setup(cell, data):
    """The network, trained parameters, optimizer, input tensor and ``loss_of(out, rows)``
    (the cell's loss of outputs ``out`` against the target rows ``rows``) of the PyTorch
    systems (seeded: the same initial weights for ``torch`` and ``torch_compile``)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    X, T = data
    dt = torch.float32 if cell.dtype == "float32" else torch.float64
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)
    hidden = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[cell.activation]
    layers = []
    sizes = cell.sizes
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, bias=True).to(dt))
        if i < len(sizes) - 2:
            layers.append(hidden())
        elif cell.out_activation == "sigmoid":  # softmax is inside CrossEntropyLoss; identity is none
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
    if cell.loss == "cross_entropy":
        labels, ce = torch.from_numpy(_one_hot_labels(T)), nn.CrossEntropyLoss()

        def loss_of(out, rows):
            return ce(out, labels[rows])
    elif cell.loss == "mse":
        def loss_of(out, rows):
            return nn.functional.mse_loss(out, Tt[rows])
    else:
        def loss_of(out, rows):
            return 0.5 * ((out - Tt[rows]) ** 2).sum(1).mean()
    name, kw = _torch_rule(cell)
    return model, params, getattr(torch.optim, name)(params, **kw), Xt, loss_of


def _torch_step(model, opt, Xt, loss_of):
    """One idiomatic step on the rows ``idx``: zero_grad, forward, loss, backward, step
    (the eager loop calls it as it is; ``torch_compile`` compiles it)."""

    def step(idx):
        opt.zero_grad()
        loss = loss_of(model(Xt[idx]), idx)
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


def _torch_info(model, Xt, loss_of):
    """``run.info()`` of the PyTorch systems: the loss on the first 4,096 samples (not timed)."""
    import torch

    def info():
        with torch.no_grad():
            return {"final_loss": float(loss_of(model(Xt[:4096]), slice(0, 4096)))}

    return info


class Torch:
    """The idiomatic PyTorch loop: nn.Sequential, optim.SGD, zero_grad/backward/step."""

    name = "torch"

    def available(self):
        return None if importlib.util.find_spec("torch") else "PyTorch not installed"

    def supports(self, cell):
        return None if _torch_rule(cell) else f"no {cell.optimizer} in torch.optim"

    def prepare(self, cell, data):
        X, _ = data
        model, _, opt, Xt, loss_of = _torch_setup(cell, data)
        run = _torch_run(_torch_step(model, opt, Xt, loss_of), cell, len(X))
        run.info = _torch_info(model, Xt, loss_of)
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
    The optimizer's state (momentum, Adam's moments, Rprop's steps) keeps the warm-up's steps,
    as deltaprop's does: an update costs the same from any state, and emptying the state would
    take the step through its first-step branch again, a recompile.
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
        if cell.workload in ("W2", "W3") or cell.batch < 32:
            return "per-step overhead: torch.compile is for batched work"
        return super().supports(cell)

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
        model, params, opt, Xt, loss_of = _torch_setup(cell, data)
        step = torch.compile(_torch_step(model, opt, Xt, loss_of), dynamic=False)

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

        run.info = _torch_info(model, Xt, loss_of)
        return run


# --------------------------------------------------------------------------- scikit-learn
class Sklearn:
    """scikit-learn's MLP with solver="sgd" (momentum as the cell says, never Nesterov's) or
    solver="adam" (MLPClassifier for softmax + cross-entropy; MLPRegressor, squared error, for
    the half-SSE and MSE cells), ``cell.epochs`` epochs per fit."""

    name = "sklearn"

    def available(self):
        return None if importlib.util.find_spec("sklearn") else "scikit-learn not installed"

    def supports(self, cell):
        if cell.worked_example:
            return "no frozen biases"
        if cell.optimizer == "sgd" and set(cell.opt_kw) <= {"momentum"}:
            return None
        return None if cell.optimizer == "adam" and not cell.opt_kw else f"no {cell.optimizer} in scikit-learn's MLP"

    def prepare(self, cell, data):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier, MLPRegressor

        X, T = data
        act = "logistic" if cell.activation == "sigmoid" else cell.activation
        kw = dict(hidden_layer_sizes=tuple(cell.sizes[1:-1]), activation=act, solver=cell.optimizer,
                  batch_size=min(cell.batch, len(X)), learning_rate_init=cell.lr,
                  momentum=cell.opt_kw.get("momentum", 0.0), nesterovs_momentum=False, alpha=0.0,
                  max_iter=cell.epochs, shuffle=cell.shuffle, tol=0.0, n_iter_no_change=10**9,
                  random_state=0)
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
def _optax_rule(cell):
    """The cell's update rule in optax (for every rule but plain SGD, written by hand), or
    None where optax is missing or has no such rule."""
    if not importlib.util.find_spec("optax"):
        return None
    import optax

    if cell.optimizer == "sgd" and set(cell.opt_kw) == {"momentum"}:
        return optax.sgd(cell.lr, momentum=cell.opt_kw["momentum"])
    if cell.optimizer == "adam" and not cell.opt_kw:
        return optax.adam(cell.lr)
    if cell.optimizer in RPROP_FAMILY and not cell.opt_kw:
        return optax.rprop(cell.lr, eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0)
    return None


class Jax:
    """JAX with the whole epoch jitted as one ``lax.scan`` over the batches (the fastest way
    to run many small updates in JAX), any depth. Plain SGD is written by hand; momentum,
    Adam and Rprop are optax's (``optax.adam`` ...; where optax is installed), their state
    carried through the scan. A batch size that does not divide N drops the last partial
    batch; the samples counted are those trained on."""

    name = "jax"

    def available(self):
        return None if importlib.util.find_spec("jax") else "JAX not installed"

    def supports(self, cell):
        if cell.optimizer == "sgd" and not cell.opt_kw:
            return None
        if _optax_rule(cell) is None:
            return (f"no {cell.optimizer} in optax" if importlib.util.find_spec("optax")
                    else f"{cell.optimizer} needs optax (not installed)")
        return None

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
        if cell.worked_example:
            params = [np.array([[0.15, 0.25], [0.20, 0.30]], dt), np.full(2, 0.35, dt),
                      np.array([[0.40, 0.50], [0.45, 0.55]], dt), np.full(2, 0.60, dt)]
        else:
            params = _initial_params(cell, rng)
        hidden = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}[cell.activation]
        out_act, loss = cell.out_activation, cell.loss
        frozen_bias = cell.worked_example
        lr = cell.lr
        tx = None if cell.optimizer == "sgd" and not cell.opt_kw else _optax_rule(cell)
        apply_updates = __import__("optax").apply_updates if tx is not None else None

        def loss_fn(p, xb, tb):
            h = xb
            for i in range(0, len(p) - 2, 2):
                h = hidden(h @ p[i] + p[i + 1])
            z = h @ p[-2] + p[-1]
            if out_act == "softmax":  # with cross-entropy
                return -(tb * jax.nn.log_softmax(z)).sum(1).mean()
            if out_act == "identity":  # with the mean squared error
                return ((z - tb) ** 2).mean()
            return 0.5 * ((jax.nn.sigmoid(z) - tb) ** 2).sum(1).mean()

        grad = jax.grad(loss_fn)

        def step(carry, batch):
            p, s = carry
            g = grad(p, *batch)
            if frozen_bias:
                g = [g[0], g[1] * 0, g[2], g[3] * 0]
            if tx is None:
                return ([w - lr * gw for w, gw in zip(p, g)], s), None
            updates, s = tx.update(g, s, p)
            return (apply_updates(p, updates), s), None

        @jax.jit
        def epoch(carry, X, T, perm):
            xs = jnp.take(X, perm[: nb * k], axis=0).reshape(nb, k, -1)
            ts = jnp.take(T, perm[: nb * k], axis=0).reshape(nb, k, -1)
            carry, _ = jax.lax.scan(step, carry, (xs, ts))
            return carry

        Xj, Tj = jax.device_put(X), jax.device_put(T)
        p0 = [jax.device_put(w) for w in params]
        state = {"carry": (p0, tx.init(p0) if tx is not None else ())}
        perm0 = np.arange(n)
        jax.block_until_ready(epoch(state["carry"], Xj, Tj, perm0))  # compile: not timed

        def run():
            for _ in range(cell.epochs):
                perm = rng.permutation(n) if cell.shuffle and k < n else perm0
                state["carry"] = epoch(state["carry"], Xj, Tj, perm)
            jax.block_until_ready(state["carry"])
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
    or batch training, sigmoid units, linear error function, data shuffled each epoch; for the
    RPROP family its one RPROP rule (iRprop-, initial step the cell's lr, steps in [1e-6, 50])."""

    name = "fann"
    _SIGMOID, _INCREMENTAL, _BATCH, _RPROP, _ERR_LINEAR = 3, 0, 1, 2, 0

    def _lib(self, dtype):
        name = {"float32": "floatfann", "float64": "doublefann"}[dtype]
        path = ctypes.util.find_library(name)
        return ctypes.CDLL(path) if path else None

    def available(self):
        return None if ctypes.util.find_library("floatfann") else "libfann not installed"

    def supports(self, cell):
        if cell.loss != "half_sse" or cell.activation != "sigmoid":
            return "FANN cells here are sigmoid + half-SSE (FANN has no softmax / cross-entropy)"
        if 1 < cell.batch < cell.n:
            return "FANN has no mini-batch mode"
        if cell.optimizer in RPROP_FAMILY and cell.batch >= cell.n and not cell.opt_kw:
            return None
        return None if cell.optimizer == "sgd" and not cell.opt_kw else f"no {cell.optimizer} in FANN"

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
        if cell.optimizer in RPROP_FAMILY:
            lib.fann_set_training_algorithm(ann, self._RPROP)
            for setter, value in (("fann_set_rprop_delta_zero", cell.lr), ("fann_set_rprop_delta_min", 1e-6)):
                getattr(lib, setter).argtypes = [ctypes.c_void_p, ctypes.c_float]
                getattr(lib, setter)(ann, value)
        else:
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


SYSTEMS = {cls.name: cls for cls in (Deltaprop, DeltapropDefaults, PlainNumpy, Torch, TorchCompile, Sklearn,
                                      Jax, Fann)}

# DELTAPROP_BENCH_HIDE=torch,jax makes those peers report themselves missing: the smoke test
# checks the "missing peer" path with it whatever happens to be installed. Hiding torch hides
# torch_compile too (it asks Torch.available first), as when PyTorch is not installed.
_HIDDEN = set(filter(None, os.environ.get("DELTAPROP_BENCH_HIDE", "").split(",")))
for _name in _HIDDEN & set(SYSTEMS):
    SYSTEMS[_name].available = lambda self: "hidden by DELTAPROP_BENCH_HIDE"
