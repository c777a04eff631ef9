"""The compiled engine: whole epochs of SGD updates in numba-compiled kernels.

Installed with the ``fast`` extra (``pip install "deltaprop[fast]"``). numba is imported only
when this engine first runs an epoch, so ``import deltaprop`` stays light and, without numba,
the engine reports itself unsupported and ``engine="auto"`` falls back to NumPy.

Three paths, all giving the NumPy engine's weights up to rounding:

* stochastic updates with a wide first layer (plain SGD, momentum, Nesterov): blocks of
  samples whose first-layer products run in BLAS, exactly as per-sample SGD up to rounding
  (:mod:`.stochastic_blocks`);
* stochastic updates of tiny nets (at most :data:`.tiny_kernels.MAX_WEIGHTS` weights, as
  XOR): one call per epoch of a kernel written out for the net's exact shape
  (:mod:`.tiny_kernels`);
* other stochastic updates (small nets, momentum): one compiled call per epoch
  (:mod:`._numba_kernels`);
* mini-batch and batch: one compiled call per epoch that calls BLAS for the products
  (:mod:`._numba_batch`), or where no BLAS can be called from compiled code, NumPy's
  ``matmul`` into preallocated buffers with compiled steps between them (:mod:`.blas_path`).

docs/performance.md has the measurements.
"""

from __future__ import annotations

import importlib.util
import warnings
import weakref

import numpy as np

from ..activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Softplus, Tanh
from ..losses import BinaryCrossEntropy, CrossEntropy, HalfSquaredError, MeanSquaredError
from ..optimizers import SGD

__all__ = ["NumbaEngine", "COMPILED_MAX_BATCH"]

#: Largest batch size run entirely by a compiled kernel; above it, BLAS products. Only
#: stochastic updates gain from a compiled kernel: from two rows on, the first layer's
#: product is a matrix product that BLAS runs faster than any loop numba emits.
COMPILED_MAX_BATCH = 1

# Codes shared with _numba_kernels (kept here too so that this module never imports numba).
_ACT_CODES = {Identity: 0, Sigmoid: 1, Tanh: 2, ReLU: 3, LeakyReLU: 4, Softplus: 5, Softmax: 6}
_LOSS_CODES = {HalfSquaredError: 0, MeanSquaredError: 1, BinaryCrossEntropy: 2, CrossEntropy: 3}


_MAX_LAYERS = 8  # _numba_kernels.MAX_LAYERS (not imported here: that would import numba)


def _numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def _act_param(act) -> float:
    if isinstance(act, Sigmoid):
        return act.flat_spot
    if isinstance(act, LeakyReLU):
        return act.alpha
    return 0.0


_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def sgd_state(opt, params: np.ndarray, K) -> tuple:
    """(kind, velocity, fresh) of an SGD optimizer for the kernels: the velocity is the
    optimizer's own, or zeros when it has none yet (the state ``Optimizer.step`` would create
    on its first update; ``fresh``), or an empty slice for plain SGD."""
    if not opt.momentum:
        return K.PLAIN, params[:0], False
    vel = opt.state.get("velocity")
    fresh = vel is None
    return (K.NESTEROV if opt.nesterov else K.MOMENTUM), (np.zeros_like(params) if fresh else vel), fresh


def sgd_done(opt, applied: int, vel: np.ndarray, fresh: bool) -> None:
    """Count the applied updates; a velocity made for this epoch becomes the optimizer's."""
    opt.t += applied
    if fresh and applied:
        opt.state = {"velocity": vel}


def _padded(arrays, empty_shape, dtype) -> tuple:
    """A tuple of MAX_LAYERS arrays: the given ones, then empty ones (one kernel per dtype)."""
    from ._numba_kernels import MAX_LAYERS

    return tuple(arrays) + tuple(np.zeros(empty_shape, dtype) for _ in range(MAX_LAYERS - len(arrays)))


class _Plan:
    """What the kernels need about one network and data set, built once per fit."""

    def __init__(self, net):
        from . import _numba_kernels as K

        self.K = K
        # what the network is: every code and parameter below derives from it (activations,
        # flat spots, loss, fusion, biases, dtype), so a change between fits means a new plan
        self.config = net.to_config()
        dt = net.dtype
        self.lay = np.array([[int(layer.bias), int(layer.train_bias),
                              _ACT_CODES[type(layer.activation)]] for layer in net.layers], np.int64)
        self.actp = np.array([_act_param(layer.activation) for layer in net.layers], dt)
        # views into net.flat: the kernels update the network's parameters in place
        self.Ws = _padded([layer.W for layer in net.layers], (0, 0), dt)
        self.Bs = _padded([layer.b for layer in net.layers], (0,), dt)
        self.widths = [layer.n_out for layer in net.layers]
        self.widest = max(max(layer.n_out, layer.n_in) for layer in net.layers)
        self.pos = {(id(layer), attr): (pos, size) for layer, attr, pos, size in net._slots}
        self.layers = net.layers
        out = net.layers[-1]
        self.loss = _LOSS_CODES[type(net.loss)]
        self.fused = bool(net.loss.is_fused_with(out.activation))
        self.c = np.zeros(K.N_CONSTS, dt)
        self.c[K.C_ONE], self.c[K.C_HALF] = 1.0, 0.5
        self.c[K.C_EPS] = np.finfo(dt).eps
        self.c[K.C_MSE] = 2.0 / out.n_out
        self.flat = net.flat
        self.blas = self.blocks = None  # the batch and blocked-stochastic paths, made on demand
        self.arange = None
        self.buffers = {}
        self._vel = (None, None)
        self.no_velocity = (_padded([], (0, 0), dt), _padded([], (0,), dt))
        self.sizes = [net.layers[0].n_in] + self.widths
        self.tiny = {}  # optimizer kind -> generated kernel or None (tiny_kernels)

    def tiny_kernel(self, kind):
        """The generated per-sample kernel for this net and optimizer kind, None if not tiny."""
        if kind not in self.tiny:
            from . import tiny_kernels as TK

            spec = TK.spec_for(self.sizes, self.lay, self.actp, self.loss, self.fused, kind)
            try:
                self.tiny[kind] = None if spec is None else TK.kernel_for(spec)
            except Exception as exc:  # noqa: BLE001 (the general kernel runs the same updates)
                warnings.warn(f"deltaprop: no tiny-net kernel for this network ({exc}); the "
                              "general compiled kernel runs its stochastic epochs", RuntimeWarning)
                self.tiny[kind] = None
        return self.tiny[kind]

    def valid_for(self, net) -> bool:
        """Whether this plan still describes ``net``: the same arrays (the kernels write into
        its views) and the same configuration (``use_flat_spot``, a new activation or loss
        change the codes and parameters the kernels take, and not the arrays)."""
        return (self.flat is net.flat and len(self.layers) == len(net.layers)
                and all(a is b for a, b in zip(self.layers, net.layers))
                and all(a is layer.W for a, layer in zip(self.Ws, net.layers))
                and self.config == net.to_config())

    def velocity_views(self, vel):
        """Per-layer views of the optimizer's velocity (aligned with the trainable params)."""
        if self._vel[0] is not vel:
            vw, vb = [], []
            for layer in self.layers:
                pos, size = self.pos[(id(layer), "W")]
                vw.append(vel[pos:pos + size].reshape(layer.W.shape))
                if layer.train_bias:
                    pos, size = self.pos[(id(layer), "b")]
                    vb.append(vel[pos:pos + size])
                else:
                    vb.append(np.zeros(layer.n_out, vel.dtype))
            self._vel = (vel, (_padded(vw, (0, 0), vel.dtype), _padded(vb, (0,), vel.dtype)))
        return self._vel[1]

    def buffers_for(self, k: int):
        """Z, A, D per layer as (k, n_out) arrays, and a scratch row."""
        if k not in self.buffers:
            dt = self.c.dtype
            self.buffers[k] = tuple(_padded([np.zeros((k, w), dt) for w in self.widths], (0, 0), dt)
                                    for _ in range(3)) + (np.zeros(self.widest, dt),)
        return self.buffers[k]


class NumbaEngine:
    """SGD (plain, momentum, Nesterov) on the built-in activations and losses, compiled.

    Counts every applied update in ``optimizer.t`` exactly as the NumPy engine does and stops
    at the first update whose batch loss is not finite, without applying it.
    """

    name = "numba"

    def __init__(self):
        pass

    def unsupported(self, trainer) -> str | None:
        """None when this engine can run ``trainer``'s set-up, else the reason it cannot."""
        if not _numba_available():
            return "numba is not installed (pip install 'deltaprop[fast]')"
        opt = trainer.optimizer
        if type(opt) is not SGD:
            return f"optimizer {type(opt).__name__} is not plain, momentum or Nesterov SGD"
        if opt.transforms:  # the kernels apply the rule to the raw gradient
            return f"SGD with {', '.join(tf.name for tf in opt.transforms)} runs on the NumPy engine"
        net = trainer.network
        if len(net.layers) > _MAX_LAYERS:
            return f"more than {_MAX_LAYERS} layers"
        for i, layer in enumerate(net.layers, start=1):
            if type(layer.activation) not in _ACT_CODES:
                return f"layer {i}: activation {type(layer.activation).__name__} has no compiled kernel"
        if type(net.loss) not in _LOSS_CODES:
            return f"loss {type(net.loss).__name__} has no compiled kernel"
        return None

    @staticmethod
    def _plan_for(net) -> _Plan:
        # one plan per network, kept across fit() calls (each fit makes a new engine): its
        # views, buffers and compiled-call arguments are built once
        try:
            plan = _PLANS.get(net)
        except TypeError:  # an unhashable network: no cache, a plan per fit
            return _Plan(net)
        if plan is None or not plan.valid_for(net):
            plan = _PLANS[net] = _Plan(net)
        return plan

    def run_epoch(self, trainer, X: np.ndarray, T: np.ndarray, order: np.ndarray | None,
                  k: int) -> tuple[float, int | None]:
        """Apply the epoch's updates in place; returns as :meth:`NumpyEngine.run_epoch`."""
        net, opt = trainer.network, trainer.optimizer
        plan = self._plan_for(net)
        K = plan.K
        T = np.ascontiguousarray(T)  # check_data's T may be a strided view
        n = len(X)
        if k > COMPILED_MAX_BATCH:
            # BLAS products for batches (see blas_path)
            from .blas_path import BlasPath

            if plan.blas is None:
                plan.blas = BlasPath(net, plan)
            return plan.blas.run_epoch(trainer, X, T, order, k)
        if order is None:
            if plan.arange is None or len(plan.arange) != n:
                plan.arange = np.arange(n, dtype=np.int64)
            order = plan.arange
        from . import stochastic_blocks as SB

        c = plan.c
        c[K.C_LR] = opt.lr
        kind, vel, fresh = sgd_state(opt, net.params, K)
        if kind == K.PLAIN:
            VWs, VBs = plan.no_velocity
        else:
            c[K.C_MU] = opt.momentum
            VWs, VBs = plan.velocity_views(vel)
        first = net.layers[0]
        if len(net.layers) > 1 and first.n_in * first.n_out >= SB.MIN_WEIGHTS:
            if plan.blocks is None:
                plan.blocks = SB.StochasticBlocks(net, plan)
        blocked = plan.blocks is not None and plan.blocks.handles(kind)
        tiny = None if blocked else plan.tiny_kernel(kind)
        if blocked:
            running, bad, applied = plan.blocks.run_epoch(trainer, X, T, order, kind, VWs, VBs)
        elif tiny is not None:
            args = [X, T, order]
            for l in range(len(net.layers)):
                args += (plan.Ws[l], plan.Bs[l], VWs[l], VBs[l])
            running, bad, applied = tiny(*args, plan.actp, c, n)
        elif len(net.layers) == 2:
            W0, W1 = plan.Ws[0], plan.Ws[1]
            if not hasattr(plan, "units2"):
                plan.units2 = (np.zeros((3, W0.shape[1]), W0.dtype), np.zeros((3, W1.shape[1]), W1.dtype))
            running, bad, applied = K.sample_epoch_2(
                X, T, order, W0, plan.Bs[0], VWs[0], VBs[0], W1, plan.Bs[1], VWs[1], VBs[1],
                plan.lay, plan.actp, plan.loss, plan.fused, kind, c, *plan.units2, n)
        else:
            Zs, As, Ds, G = plan.buffers_for(1)
            running, bad, applied = K.sample_epoch(X, T, order, plan.Ws, plan.Bs, VWs, VBs,
                                                   plan.lay, plan.actp, plan.loss, plan.fused,
                                                   kind, c, Zs, As, Ds, G, n)
        sgd_done(opt, applied, vel, fresh)
        return running, (bad or None)
