"""The compiled engine: whole epochs of updates in numba-compiled kernels, for every optimizer of
the registry.

Installed with the ``fast`` extra (``pip install "deltaprop[fast]"``). numba is imported only
when this engine first runs an epoch, so ``import deltaprop`` stays light and, without numba,
the engine reports itself unsupported and ``engine="auto"`` falls back to NumPy.

Its paths, what each supports and how it runs, are the rows of :data:`.paths.PATHS` whose
name starts with ``numba/``; :meth:`NumbaEngine.path_for` picks one for each rule and batch
size (kept in the network's plan) and the trainer records the one each epoch ran
(``trainer.engine_used``). All give the NumPy engine's weights up to rounding. The
maths of every path is :mod:`._maths`, with the codes of :mod:`.codes`; docs/performance.md
has the measurements.
"""

from __future__ import annotations

import importlib.util
import warnings
import weakref

import numpy as np

from ..i18n import gettext as _
from ..optimizers import OPTIMIZERS, SGD
from ..transforms import AddDecayedWeights, AddNoise
from . import codes

__all__ = ["NumbaEngine", "COMPILED_MAX_BATCH"]

#: Largest batch size run entirely by a compiled kernel; above it, BLAS products. Only
#: stochastic updates gain from a compiled kernel: from two rows on, the first layer's
#: product is a matrix product that BLAS runs faster than any loop numba emits.
COMPILED_MAX_BATCH = 1


def _numba_available() -> bool:
    return importlib.util.find_spec("numba") is not None


_PLANS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

#: The kernels this process has run (:func:`kernel_key`): numba has compiled or loaded them, so
#: a later fit that needs them pays no start-up (``engine="auto"`` counts none).
LOADED: set = set()


def kernel_key(net, k: int, opt) -> tuple:
    """Which compiled kernels an epoch of batches of ``k`` rows needs, as far as their loading
    goes: the batch kernels take every net of a dtype (arrays padded to MAX_LAYERS); the
    per-sample ones on the depth and rule too (and the tiny ones on the shape)."""
    if k > COMPILED_MAX_BATCH or not runs_inline(opt):
        return ("batch", net.dtype.str)
    return ("sample", net.dtype.str, sgd_kind(opt),
            tuple([net.layers[0].n_in] + [layer.n_out for layer in net.layers]))


def sgd_kind(opt) -> int:
    """The code (codes.RULES) of an SGD optimizer's rule: plain, momentum or Nesterov."""
    if not opt.momentum:
        return codes.PLAIN
    return codes.NESTEROV if opt.nesterov else codes.MOMENTUM


def rule_code(opt) -> int:
    """The code (codes.RULES) of an optimizer of the registry."""
    if type(opt) is SGD:
        return sgd_kind(opt)
    return next(code for code, (_, name, _) in enumerate(codes.RULES) if name == opt.name)


def runs_inline(opt) -> bool:
    """Whether the per-sample kernels (tiny, per-sample, blocked) can run ``opt``: a rule linear
    in the gradient with constant coefficients and no transforms. Any other rule runs as one
    compiled pass over the flat parameters after each update's gradient (:class:`RuleState`)."""
    return type(opt) is SGD and not opt.transforms


def transforms_reason(opt, net) -> str | None:
    """None where the compiled update applies ``opt``'s transforms as the NumPy engine does:
    weight decay (its mask in the network's dtype), then gradient noise, each at most once
    (the chain the options build); else why not."""
    chain = opt.transforms
    kinds = [type(tf) for tf in chain]
    if kinds not in ([], [AddDecayedWeights], [AddNoise], [AddDecayedWeights, AddNoise]):
        names = ", ".join(type(tf).__name__ for tf in chain)
        return _("the gradient transforms [{names}] have no compiled form (weight decay, then "
                 "gradient noise, each at most once, do)").format(names=names)
    for tf in chain:
        mask = getattr(tf, "mask", None)
        if mask is not None and (mask.shape != (net.n_trainable,) or mask.dtype != net.dtype):
            return _("the weight-decay mask has shape {shape} and dtype {dtype}; the compiled update takes "
                     "({n},) in {net_dtype}").format(shape=mask.shape, dtype=mask.dtype, n=net.n_trainable,
                                                     net_dtype=net.dtype)
    return None


class RuleState:
    """An optimizer as the compiled update takes it (:func:`._numba_kernels.rule_update`): its
    rule code, its own state arrays (``opt.state``, made as ``Optimizer.step`` would at the
    first update), the float64 record ``h`` and the dtype constants ``q`` (codes.RULE_H,
    RULE_Q), the weight-decay mask and buffers for the generator's draws. The state stays the
    optimizer's, so checkpoints, resuming and a later fit on the NumPy engine continue from it;
    :meth:`done` writes back the counters."""

    @staticmethod
    def draws(opt) -> bool:
        """Whether the rule draws random numbers at each update (gradient noise, SARPROP)."""
        return rule_code(opt) == codes.SARPROP or any(not isinstance(tf, AddDecayedWeights)
                                                      for tf in opt.transforms)

    def __init__(self, opt, params: np.ndarray):
        dt = params.dtype
        self.rule = rule_code(opt)
        self.fresh = not opt.state
        self.state = opt._init_state(params) if self.fresh else opt.state
        arrays = []
        for name in opt._state_names:
            a = self.state[name]
            if a.dtype != dt or not a.flags.c_contiguous:
                a = self.state[name] = np.ascontiguousarray(a, dt)
            arrays.append(a)
        self.ns = len(arrays)
        empty = params[:0]
        self.S = tuple(arrays) + (empty,) * (3 - len(arrays))
        C = codes
        h = self.h = np.zeros(C.N_RULE_H)
        q = self.q = np.zeros(C.N_RULE_Q, dt)
        h[C.H_T] = opt.t
        h[C.H_COUNT] = self.state["count"] if "count" in self.state else 0
        h[C.H_PREV_LOSS] = self.state["prev_loss"] if "prev_loss" in self.state else np.inf
        get = lambda name: float(getattr(opt, name, 0.0))  # noqa: E731 (what the rule has)
        h[C.H_LR] = q[C.Q_LR] = opt.lr
        h[C.H_MU] = q[C.Q_MU] = get("momentum")
        h[C.H_B1] = q[C.Q_B1] = get("beta1")
        h[C.H_B2] = q[C.Q_B2] = get("beta2")
        q[C.Q_1MB1], q[C.Q_1MB2] = 1.0 - get("beta1"), 1.0 - get("beta2")
        h[C.H_EPS] = q[C.Q_EPS] = get("eps")
        h[C.H_ETA_MINUS] = q[C.Q_ETA_MINUS] = get("eta_minus")
        h[C.H_ETA_PLUS] = q[C.Q_ETA_PLUS] = get("eta_plus")
        h[C.H_DMIN] = q[C.Q_DMIN] = get("delta_min")
        h[C.H_DMAX] = q[C.Q_DMAX] = get("delta_max")
        if self.rule == C.QUICKPROP:
            h[C.H_QMU] = q[C.Q_QMU] = opt.mu
            q[C.Q_SHRINK] = opt.mu / (1.0 + opt.mu)
        h[C.H_K1], h[C.H_K2] = get("k1"), get("k2")
        h[C.H_K3] = q[C.Q_K3] = get("k3")
        h[C.H_TEMP] = get("temperature")
        q[C.Q_ONE] = 1.0
        self.mask = self.noise = empty
        for tf in opt.transforms:
            if isinstance(tf, AddDecayedWeights):
                h[C.H_WD] = q[C.Q_WD] = tf.weight_decay
                q[C.Q_DECAY] = 1.0
                if tf.mask is not None:
                    q[C.Q_MASKED] = 1.0
                    self.mask = tf.mask
            else:
                h[C.H_NU], h[C.H_GAMMA] = tf.nu, tf.gamma
                q[C.Q_NOISY] = 1.0
                self.noise = np.empty_like(params)
        self.rnd = np.empty_like(params) if self.rule == C.SARPROP else empty
        self.rng = opt._generator() if RuleState.draws(opt) else None

    def draw(self) -> None:
        """The update's random numbers from the optimizer's generator, in the order the NumPy
        engine draws them (the noise in the transforms, then SARPROP's in its rule)."""
        dt = self.q.dtype
        if self.noise.size:
            self.rng.standard_normal(dtype=dt, out=self.noise)
        if self.rnd.size:
            self.rng.random(dtype=dt, out=self.rnd)

    def done(self, opt, applied: int) -> None:
        """Count the applied updates; the state made for this epoch becomes the optimizer's
        once an update used it; write back Adam's count and iRprop+'s previous loss."""
        opt.t += applied
        if not applied:
            return
        if self.fresh:
            opt.state = self.state
        if "count" in self.state:
            self.state["count"][...] = self.h[codes.H_COUNT]
        if "prev_loss" in self.state:
            self.state["prev_loss"][...] = self.h[codes.H_PREV_LOSS]


def sgd_state(opt, params: np.ndarray) -> tuple:
    """(kind, velocity, fresh) of an SGD optimizer for the kernels: the velocity is the
    optimizer's own, or zeros when it has none yet (the state ``Optimizer.step`` would create
    on its first update; ``fresh``), or an empty slice for plain SGD."""
    kind = sgd_kind(opt)
    if kind == codes.PLAIN:
        return kind, params[:0], False
    vel = opt.state.get("velocity")
    fresh = vel is None
    return kind, (np.zeros_like(params) if fresh else vel), fresh


def sgd_done(opt, applied: int, vel: np.ndarray, fresh: bool) -> None:
    """Count the applied updates; a velocity made for this epoch becomes the optimizer's."""
    opt.t += applied
    if fresh and applied:
        opt.state = {"velocity": vel}


def _padded(arrays, empty_shape, dtype) -> tuple:
    """A tuple of MAX_LAYERS arrays: the given ones, then empty ones (one kernel per dtype)."""
    return tuple(arrays) + tuple(np.zeros(empty_shape, dtype) for _ in range(codes.MAX_LAYERS - len(arrays)))


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
                              codes.activation_code(layer.activation)] for layer in net.layers], np.int64)
        self.actp = np.array([codes.activation_param(layer.activation) for layer in net.layers], dt)
        # views into net.flat: the kernels update the network's parameters in place
        self.Ws = _padded([layer.W for layer in net.layers], (0, 0), dt)
        self.Bs = _padded([layer.b for layer in net.layers], (0,), dt)
        self.widths = [layer.n_out for layer in net.layers]
        self.widest = max(max(layer.n_out, layer.n_in) for layer in net.layers)
        self.pos = {(id(layer), attr): (pos, size) for layer, attr, pos, size in net._slots}
        self.layers = net.layers
        out = net.layers[-1]
        self.loss = codes.loss_code(net.loss)
        self.fused = bool(net.loss.is_fused_with(out.activation))
        self.c = np.zeros(codes.N_CONSTS, dt)
        self.c[codes.C_ONE], self.c[codes.C_HALF] = 1.0, 0.5
        self.c[codes.C_EPS] = np.finfo(dt).eps
        self.c[codes.C_MSE] = 2.0 / out.n_out
        self.flat = net.flat
        self.blas = self.blocks = None  # the batch and blocked-stochastic paths, made on demand
        self.arange = None
        self.buffers = {}
        self._vel = (None, None)
        self.no_velocity = (_padded([], (0, 0), dt), _padded([], (0,), dt))
        self.sizes = [net.layers[0].n_in] + self.widths
        self.tiny = {}  # optimizer kind -> generated kernel or None (tiny_kernels)
        self.paths = {}  # (SGD kind, batch rows, inline) -> the path's name (path_for)

    def tiny_kernel(self, kind):
        """The generated per-sample kernel for this net and optimizer kind, None if not tiny."""
        if kind not in self.tiny:
            from . import tiny_kernels as TK

            spec = TK.spec_for(self.sizes, self.lay, self.loss, self.fused, kind)
            try:
                self.tiny[kind] = None if spec is None else TK.kernel_for(spec)
            except Exception as exc:  # noqa: BLE001 (the general kernel runs the same updates)
                warnings.warn(_("deltaprop: no tiny-net kernel for this network ({reason}); the general compiled "
                                "kernel runs its stochastic epochs").format(reason=exc), RuntimeWarning)
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
    """Every optimizer of the registry (with weight decay and gradient noise) on the built-in
    activations and losses, compiled, in the paths of :data:`.paths.PATHS` whose name starts
    with ``numba/``; the one that runs an epoch is recorded as ``trainer.engine_used``.

    Counts every applied update in ``optimizer.t`` exactly as the NumPy engine does and stops
    at the first update whose batch loss is not finite, without applying it.
    """

    name = "numba"

    def __init__(self):
        self._checked = None  # (trainer's loop token, network, plan): the plan checked in this loop

    def unsupported(self, trainer) -> str | None:
        """None when this engine can run ``trainer``'s set-up, else the reason it cannot."""
        if not _numba_available():
            return _("numba is not installed (pip install 'deltaprop[fast]')")
        if getattr(trainer, "sample_weight", None) is not None:
            return _("sample weights run on the NumPy engine")
        if getattr(trainer, "sparse_input", False):
            return _("sparse inputs run on the NumPy engine (scipy.sparse products)")
        opt = trainer.optimizer
        net = trainer.network
        if getattr(opt, "runs_own_loop", False):
            return _("optimizer {name!r} runs its own loop (scipy's) with the NumPy engine's loss and "
                     "gradient").format(name=opt.name)
        if type(opt) is not OPTIMIZERS.get(opt.name):  # a subclass may change step()
            return _("optimizer {name} is not a class of the registry (a subclass may change step(): only the "
                     "NumPy engine calls it)").format(name=type(opt).__name__)
        if type(opt) is not SGD and not any(name == opt.name for _, name, _ in codes.RULES):
            # a class registered later (OPTIMIZERS is open): its step() has no compiled rule
            return _("optimizer {name!r} has no compiled rule (engines/codes.py's RULES)").format(name=opt.name)
        reason = transforms_reason(opt, net)
        if reason:
            return reason
        if len(net.layers) > codes.MAX_LAYERS:
            return _("more than {n} layers").format(n=codes.MAX_LAYERS)
        for i, layer in enumerate(net.layers, start=1):
            if codes.activation_code(layer.activation) is None:
                return _("layer {i}: activation {name} has no compiled kernel").format(
                    i=i, name=type(layer.activation).__name__)
        if codes.loss_code(net.loss) is None:
            return _("loss {name} has no compiled kernel").format(name=type(net.loss).__name__)
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

    @staticmethod
    def path_for(plan, net, kind, k, inline=True) -> str:
        """The name of the path (a row of :data:`.paths.PATHS`) that runs an epoch of batches of
        ``k`` rows under the SGD ``kind``: the first whose conditions hold. A rule that the
        per-sample kernels do not run (``inline`` False: not linear, or with transforms) runs
        its stochastic epochs on the batch paths too, in batches of one."""
        if k > COMPILED_MAX_BATCH or not inline:
            from .blas_lib import gemm_for

            return "numba/batch-blas" if gemm_for(net.dtype) is not None else "numba/batch-matmul"
        from . import stochastic_blocks as SB

        first = net.layers[0]
        if len(net.layers) > 1 and first.n_in * first.n_out >= SB.MIN_WEIGHTS:
            if plan.blocks is None:
                plan.blocks = SB.StochasticBlocks(net, plan)
            if plan.blocks.handles(kind):
                return "numba/blocked" if plan.blocks.gemm is not None else "numba/blocked-matmul"
        if plan.tiny_kernel(kind) is not None:
            return "numba/tiny"
        return "numba/per-sample"

    def path_of(self, trainer, n: int) -> str:
        """The path (a row of :data:`.paths.PATHS`) that an epoch of ``trainer`` on ``n`` rows
        will take, as :meth:`run_epoch` records it, without running one: what ``deltaprop
        train`` names in its opening lines."""
        net, opt = trainer.network, trainer.optimizer
        plan = self._plan_for(net)
        k = trainer.batch_rows(n)
        inline = runs_inline(opt)
        path = self.path_for(plan, net, sgd_kind(opt) if inline else None, k, inline)
        if path == "numba/batch-blas":
            from .blas_path import BlasPath

            if plan.blas is None:
                plan.blas = BlasPath(net, plan)
            if plan.blas.row_threads(k, RuleState.draws(opt)) > 1:
                path = "numba/batch-threads"
        return path

    def run_epoch(self, trainer, X: np.ndarray, T: np.ndarray, order: np.ndarray | None,
                  k: int) -> tuple[float, int | None]:
        """Apply the epoch's updates in place; returns as :meth:`NumpyEngine.run_epoch`."""
        net, opt = trainer.network, trainer.optimizer
        # The plan is checked against the network (its arrays and configuration, 15-40 us)
        # once per training loop; again each epoch where callbacks run between epochs, as
        # they may change the network (use_flat_spot, a new activation).
        token, checked = getattr(trainer, "_loop_token", None), self._checked
        if (checked is not None and token is not None and checked[0] is token and checked[1] is net
                and not trainer.callbacks):
            plan = checked[2]
        else:
            plan = self._plan_for(net)
            self._checked = (token, net, plan)
        K = plan.K
        T = np.ascontiguousarray(T)  # check_data's T may be a strided view
        n = len(X)
        inline = runs_inline(opt)
        kind = sgd_kind(opt) if inline else None
        path = plan.paths.get((kind, k, inline))
        if path is None:
            path = plan.paths[(kind, k, inline)] = self.path_for(plan, net, kind, k, inline)
            LOADED.add(kernel_key(net, k, opt))
        trainer.engine_used = path
        if path.startswith("numba/batch"):
            from .blas_path import BlasPath

            if plan.blas is None:
                plan.blas = BlasPath(net, plan)
            return plan.blas.run_epoch(trainer, X, T, order, k)
        if order is None:
            if plan.arange is None or len(plan.arange) != n:
                plan.arange = np.arange(n, dtype=np.int64)
            order = plan.arange
        c = plan.c
        c[codes.C_LR] = opt.lr
        kind, vel, fresh = sgd_state(opt, net.params)
        if kind == codes.PLAIN:
            VWs, VBs = plan.no_velocity
        else:
            c[codes.C_MU] = opt.momentum
            VWs, VBs = plan.velocity_views(vel)
        if path.startswith("numba/blocked"):
            running, bad, applied = plan.blocks.run_epoch(trainer, X, T, order, kind, VWs, VBs)
        elif path == "numba/tiny":
            args = [X, T, order]
            for l in range(len(net.layers)):
                args += (plan.Ws[l], plan.Bs[l], VWs[l], VBs[l])
            running, bad, applied = plan.tiny_kernel(kind)(*args, plan.actp, c, n)
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

