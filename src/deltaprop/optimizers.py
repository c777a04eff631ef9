r"""Update rules. Each optimizer owns its state, updates a flat parameter vector in place and
counts its updates (``optimizer.t``), so "updates per epoch" is measured, not assumed.

Symbols used in every docstring below: :math:`\theta` the trainable parameters (one flat
vector), :math:`g_t = \nabla_\theta E(\theta_{t-1})` the gradient of the batch loss (a *mean*
over the batch) seen by update :math:`t`, :math:`E_t` that batch loss, :math:`\eta` the
learning rate ``lr``, :math:`t = 1, 2, \dots` the update count. Products, quotients, ``sign``,
``min`` and ``max`` act elementwise.

==============  ================================================  ==========
name            rule                                              modes
==============  ================================================  ==========
``sgd``         gradient descent, momentum, Nesterov momentum     all
``adam``        Adam                                              all
``rprop-``      Rprop without weight-backtracking                 batch only
``rprop+``      Rprop with weight-backtracking (the original)     batch only
``irprop-``     improved Rprop without backtracking               batch only
``irprop+``     improved Rprop with error-dependent backtracking  batch only
``quickprop``   Quickprop                                         batch only
``sarprop``     iRprop- with annealed noise and weight decay      batch only
``lbfgs``       L-BFGS-B through scipy (runs its own loop)        batch only
==============  ================================================  ==========

RPROP and Quickprop compare the gradient of one update with the gradient of the previous
one; with a different batch behind each gradient the comparison means nothing, so they set
``batch_only`` and :class:`~deltaprop.training.Trainer` refuses them outside batch mode.

Options every optimizer takes (keyword-only). ``weight_decay`` and ``grad_noise`` are gradient
transformations (:mod:`deltaprop.transforms`) applied before the rule, decay first; the
options build that chain, or ``transforms=[...]`` gives one explicitly:

* ``weight_decay`` :math:`\lambda \ge 0`: L2 regularisation added to the gradient,
  :math:`g \leftarrow g + \lambda\, m \odot \theta`, i.e. the loss
  :math:`E + \tfrac{\lambda}{2}\lVert m \odot \theta \rVert^2`. Under a
  :class:`~deltaprop.training.Trainer` the mask :math:`m` is 1 for weights and 0 for biases
  (biases are **not** decayed, as in scikit-learn's ``alpha``), unless ``decay_biases=True``;
  an optimizer used on its own decays every entry. The recorded training loss is the data
  loss without the penalty. (This is coupled L2, as in PyTorch's ``weight_decay``; for Adam it
  is not the decoupled AdamW.)
* ``grad_noise`` :math:`\nu \ge 0` and ``noise_decay`` :math:`\gamma`: annealed Gaussian
  gradient noise (Neelakantan et al. 2015), :math:`g \leftarrow g + \sigma_t \xi`,
  :math:`\xi \sim N(0, I)`, :math:`\sigma_t^2 = \nu / (1 + t)^{\gamma}`.
* ``transforms``: a list of :class:`~deltaprop.transforms.GradientTransform` applied in order,
  instead of the two options above (giving both is an error). Nothing decides the mask for
  it: ``AddDecayedWeights(lam, mask=net.weight_mask())`` spares the biases.
* ``seed``: an int or a ``numpy.random.Generator`` for the noise (``grad_noise``,
  SARPROP). Left out, a :class:`~deltaprop.training.Trainer` seeds it from the run's own
  generator, so the run's seed decides everything; the global ``np.random`` is never used.

State lives in ``optimizer.state`` (arrays keyed by name, allocated at the first update) plus
the update counter ``t`` and the noise generator; :meth:`Optimizer.state_dict` /
:meth:`Optimizer.load_state_dict` round-trip all of it, so a run resumed from a checkpoint
continues bitwise identically. :meth:`Optimizer.reset` clears the adaptive state (momentum,
step sizes, moments) but keeps ``t``.

To add an optimizer: subclass :class:`Optimizer`, implement ``_update`` (and ``_init_state``
if its state does not start at zero), and add it to ``OPTIMIZERS``.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError, unknown_keywords, unknown_name
from .i18n import gettext as _
from .transforms import NOISE_DECAY, GradientTransform, from_options
from .transforms import check_nonnegative as _check_nonnegative

__all__ = ["Optimizer", "SGD", "Adam", "RpropMinus", "RpropPlus", "IRpropMinus", "IRpropPlus",
           "Quickprop", "Sarprop", "LBFGS", "OPTIMIZERS", "get_optimizer"]


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ConfigError(_("{name} must be a positive number, got {value}").format(name=name, value=value))
    return value


def _check_unit(name: str, value: float) -> float:
    value = float(value)
    if not (0.0 <= value < 1.0):
        raise ConfigError(_("{name} must be in [0, 1), got {value}").format(name=name, value=value))
    return value


def _as_generator(seed) -> np.random.Generator | None:
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(_("seed must be a non-negative integer or a numpy Generator, got {value!r}").format(
            value=seed))
    return np.random.default_rng(int(seed))


def _generator_from_state(state: dict) -> np.random.Generator:
    try:
        bit_generator = getattr(np.random, state["bit_generator"])()
        bit_generator.state = state
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(_("optimizer state has a malformed random generator state: {reason}").format(
            reason=exc)) from None
    return np.random.Generator(bit_generator)


class Optimizer:
    """Base class: validated hyper-parameters, explicit state, an update counter.

    See the module docstring for the options every optimizer takes (``weight_decay``,
    ``decay_biases``, ``grad_noise``, ``noise_decay``, ``seed``, ``transforms``).
    """

    name = ""
    #: Names of per-parameter state arrays (allocated lazily, saved in checkpoints).
    _state_names: tuple[str, ...] = ()
    #: Whether the rule needs the gradient of the whole data set (RPROP, Quickprop).
    batch_only = False
    #: Whether the rule needs the batch loss E_t as well as the gradient (iRprop+, SARPROP).
    needs_loss = False
    #: Whether the rule itself draws random numbers (SARPROP); grad_noise also needs them.
    uses_rng = False

    def __init__(self, lr: float = 0.1, *, weight_decay: float = 0.0, decay_biases: bool = False,
                 grad_noise: float = 0.0, noise_decay: float = NOISE_DECAY, seed=None, transforms=None):
        self.lr = _check_positive("learning rate", lr)
        self.weight_decay = _check_nonnegative("weight decay", weight_decay)
        self.decay_biases = bool(decay_biases)
        self.grad_noise = _check_nonnegative("gradient noise", grad_noise)
        self.noise_decay = _check_nonnegative("noise decay", noise_decay)
        self.rng = _as_generator(seed)
        self.t = 0
        self.state: dict[str, np.ndarray] = {}
        self._weight_mask = None  # the network's Network.weight_mask(); set by attach()
        self._loss_fn = None  # E(theta) over the training set; set by attach()
        self._explicit = None if transforms is None else self._check_transforms(transforms)
        self._chain_key, self._chain = None, ()

    def _check_transforms(self, transforms) -> tuple[GradientTransform, ...]:
        chain = tuple(transforms)
        for tf in chain:
            if not isinstance(tf, GradientTransform):
                raise ConfigError(_("transforms must be GradientTransform instances, got {value!r}").format(value=tf))
        if self.weight_decay or self.decay_biases or self.grad_noise or self.noise_decay != NOISE_DECAY:
            raise ConfigError(_("give weight_decay/decay_biases/grad_noise/noise_decay or transforms=, "
                                "not both (transforms= replaces them)"))
        return chain

    @property
    def transforms(self) -> tuple[GradientTransform, ...]:
        """The gradient transformations applied before the rule, in order: the ones given as
        ``transforms=``, else the chain the options stand for (the mask of the network
        attached, unless ``decay_biases``)."""
        if self._explicit is not None:
            return self._explicit
        # Rebuilt whenever an option changes (load_state_dict sets them; so may a user), so
        # the chain cannot drift from hyperparameters(). id() is safe: the cached chain holds
        # the mask, so no other array can take its id while the key is compared.
        mask = None if self.decay_biases else self._weight_mask
        key = (self.weight_decay, self.grad_noise, self.noise_decay, id(mask))
        if key != self._chain_key:
            self._chain = tuple(from_options(self.weight_decay, self.grad_noise, self.noise_decay, mask))
            self._chain_key = key
        return self._chain

    # ----------------------------------------------------------------- the update
    def step(self, params: np.ndarray, grads: np.ndarray, loss: float | None = None) -> None:
        """Apply one update to ``params`` in place, given the batch gradient ``grads``.

        ``loss`` is the batch loss at ``params`` (before the update); only rules with
        ``needs_loss`` use it, and when it is not given they evaluate it through the training
        data a :class:`~deltaprop.training.Trainer` attached (one extra forward pass).
        """
        if not self.state:
            self.state = self._init_state(params)
        self.t += 1
        g = grads
        for transform in self.transforms:
            g = transform(g, params, self.t, self._generator() if transform.uses_rng else None)
        if self.needs_loss and loss is None:
            if self._loss_fn is None:
                raise ConfigError(_("optimizer {name!r} needs the loss at each update: pass loss= to step(), or "
                                    "train it with a Trainer").format(name=self.name))
            loss = self._loss_fn()
        self._update(params, g, loss)

    def _init_state(self, params: np.ndarray) -> dict[str, np.ndarray]:
        return {k: np.zeros_like(params) for k in self._state_names}

    def _update(self, params: np.ndarray, grads: np.ndarray, loss) -> None:
        params -= self.lr * grads

    def _generator(self) -> np.random.Generator:
        if self.rng is None:
            raise ConfigError(_("optimizer {name!r} draws random numbers and has no generator: pass seed= (an "
                                "int or a numpy Generator), or train it with a Trainer, which seeds it from "
                                "the run's seed").format(name=self.name))
        return self.rng

    # ----------------------------------------------------------------- life cycle
    def attach(self, trainer, X: np.ndarray, T: np.ndarray) -> None:
        """Called by :meth:`Trainer.fit` before training: learn which entries are biases (for
        weight decay), how to evaluate the training loss (rules with ``needs_loss``), and take
        a generator seeded from the run's generator when noise is needed and none was given."""
        net = trainer.network
        self._weight_mask = net.weight_mask() if self.weight_decay and not self.decay_biases else None
        if self.needs_loss:
            chunk = trainer.chunk_size
            weights = getattr(trainer, "sample_weight", None)  # the loss the gradient is of
            self._loss_fn = lambda: net.evaluate(X, T, chunk, weights)[0]
        if self.rng is None and (self.uses_rng or any(tf.uses_rng for tf in self.transforms)):
            self.rng = np.random.default_rng(int(trainer.rng.integers(2**63)))

    def reset(self) -> None:
        """Forget the adaptive state (momentum, step sizes, moments); it restarts at the next
        update as at the first. The update counter ``t`` and the generator are kept."""
        self.state = {}

    def hyperparameters(self) -> dict:
        hyper = {"lr": self.lr, "weight_decay": self.weight_decay, "decay_biases": self.decay_biases,
                 "grad_noise": self.grad_noise, "noise_decay": self.noise_decay}
        if self._explicit is not None:  # only then: checkpoints of the options stay as they were
            hyper["transforms"] = self._describe_explicit()
        return hyper

    def _describe_explicit(self) -> list | None:
        if self._explicit is None:
            return None
        return [{"name": type(tf).__name__, **tf.hyperparameters()} for tf in self._explicit]

    def state_dict(self) -> dict:
        """Everything needed to continue exactly: hyper-parameters, counter, state arrays and
        the generator's state (``None`` when there is none). Arrays are copies."""
        return {"name": self.name, "hyper": self.hyperparameters(), "t": self.t,
                "state": {k: v.copy() for k, v in self.state.items()},
                "rng": None if self.rng is None else self.rng.bit_generator.state}

    def load_state_dict(self, d: dict) -> None:
        if d.get("name") != self.name:
            raise ConfigError(_("optimizer state is for {saved!r}, not {name!r}").format(saved=d.get("name"),
                                                                                         name=self.name))
        hyper = dict(d["hyper"])
        # a chain given as code cannot be rebuilt from the file, only checked against it
        saved, mine = hyper.pop("transforms", None), self._describe_explicit()
        if saved != mine:
            raise ConfigError(_("optimizer state was saved with transforms {saved}, not {mine}").format(
                saved=saved, mine=mine))
        for k, v in hyper.items():
            setattr(self, k, v)
        self.t = int(d["t"])
        self.state = {k: np.array(v) for k, v in d["state"].items()}
        if d.get("rng") is not None:
            self.rng = _generator_from_state(d["rng"])

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({hp})"


class SGD(Optimizer):
    r"""Gradient descent, optionally with momentum or Nesterov momentum.

    Plain: :math:`\theta_{t} = \theta_{t-1} - \eta g_t`.

    Momentum :math:`\mu` (the classic form, Rumelhart, Hinton & Williams 1986):
    :math:`v_t = \mu v_{t-1} - \eta g_t,\ \theta_t = \theta_{t-1} + v_t`, :math:`v_0 = 0`.

    Nesterov (Sutskever et al. 2013, in the form used by PyTorch and Keras):
    :math:`v_t = \mu v_{t-1} - \eta g_t,\ \theta_t = \theta_{t-1} + \mu v_t - \eta g_t`.

    Note: PyTorch keeps :math:`v` without the learning rate (:math:`v = \mu v + g`,
    :math:`\theta -= \eta v`); the two agree while :math:`\eta` is constant, and differ for one
    update after a schedule changes :math:`\eta` (here the old velocity keeps its old scale).
    """

    name = "sgd"

    def __init__(self, lr: float = 0.1, momentum: float = 0.0, nesterov: bool = False, **kwargs):
        super().__init__(lr, **kwargs)
        self.momentum = _check_unit("momentum", momentum)
        self.nesterov = bool(nesterov)
        if self.nesterov and not self.momentum:
            raise ConfigError(_("nesterov needs a momentum > 0"))
        self._state_names = ("velocity",) if self.momentum else ()

    def _update(self, params, grads, loss):
        if not self.momentum:
            params -= self.lr * grads
            return
        v = self.state["velocity"]
        v *= self.momentum
        v -= self.lr * grads
        if self.nesterov:
            params += self.momentum * v - self.lr * grads
        else:
            params += v

    def hyperparameters(self):
        return {**super().hyperparameters(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    r"""Adam (Kingma & Ba 2015, "Adam: A method for stochastic optimization", ICLR).

    With :math:`k` the number of updates since the state was (re)started:

    .. math::
        m_k = \beta_1 m_{k-1} + (1-\beta_1) g_k,\quad
        v_k = \beta_2 v_{k-1} + (1-\beta_2) g_k^2,\quad
        \theta_k = \theta_{k-1} - \eta\,\frac{m_k / (1-\beta_1^k)}{\sqrt{v_k / (1-\beta_2^k)} + \epsilon},

    :math:`m_0 = v_0 = 0`. :math:`\epsilon` is added outside the square root, as in the paper
    and in PyTorch (optax's ``eps_root`` is 0 by default, the same). :math:`k` is kept in the
    state (``count``), so :meth:`reset` restarts the bias correction too.
    """

    name = "adam"
    _state_names = ("m", "v")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 **kwargs):
        super().__init__(lr, **kwargs)
        self.beta1 = _check_unit("beta1", beta1)
        self.beta2 = _check_unit("beta2", beta2)
        self.eps = _check_positive("eps", eps)

    def _init_state(self, params):
        return {"m": np.zeros_like(params), "v": np.zeros_like(params), "count": np.zeros((), np.int64)}

    def _update(self, params, grads, loss):
        s = self.state
        s["count"] += 1
        k = int(s["count"])
        m, v = s["m"], s["v"]
        m *= self.beta1
        m += (1.0 - self.beta1) * grads
        v *= self.beta2
        v += (1.0 - self.beta2) * grads * grads
        m_hat = m / (1.0 - self.beta1 ** k)
        v_hat = v / (1.0 - self.beta2 ** k)
        params -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def hyperparameters(self):
        return {**super().hyperparameters(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class _Rprop(Optimizer):
    r"""Shared part of the RPROP family: per-parameter step sizes :math:`\Delta` adapted from
    the sign of consecutive gradients, never from their size.

    .. math::
        \Delta_t = \begin{cases}
            \min(\eta^+ \Delta_{t-1}, \Delta_{\max}) & g_{t-1} g_t > 0 \\
            \max(\eta^- \Delta_{t-1}, \Delta_{\min}) & g_{t-1} g_t < 0 \\
            \Delta_{t-1} & \text{otherwise}
        \end{cases}

    with :math:`\Delta_0` = ``lr`` and :math:`g_0 = 0` (no adaptation at the first update).
    ``lr`` is only the *initial* step size: a learning-rate schedule or halving has no effect
    once the step sizes exist (:meth:`reset` makes them start again from ``lr``).
    """

    batch_only = True

    def __init__(self, lr: float = 0.1, eta_minus: float = 0.5, eta_plus: float = 1.2,
                 delta_min: float = 1e-6, delta_max: float = 50.0, **kwargs):
        super().__init__(lr, **kwargs)
        self.eta_minus = float(eta_minus)
        if not 0.0 < self.eta_minus < 1.0:
            raise ConfigError(_("eta_minus must be in (0, 1), got {value}").format(value=eta_minus))
        self.eta_plus = float(eta_plus)
        if not (np.isfinite(self.eta_plus) and self.eta_plus > 1.0):
            raise ConfigError(_("eta_plus must be a number > 1, got {value}").format(value=eta_plus))
        self.delta_min = _check_nonnegative("delta_min", delta_min)
        self.delta_max = _check_positive("delta_max", delta_max)
        if not self.delta_min <= self.lr <= self.delta_max:
            raise ConfigError(_("the initial step size lr={lr} must lie in [delta_min, delta_max] = [{lo}, {hi}]").format(
                lr=self.lr, lo=self.delta_min, hi=self.delta_max))

    def _init_state(self, params):
        state = super()._init_state(params)
        state["step_size"] = np.full_like(params, self.lr)
        return state

    def _adapt(self, grads: np.ndarray) -> np.ndarray:
        """Adapt the step sizes in place; return the products g_{t-1} g_t."""
        step, prod = self.state["step_size"], self.state["prev_grad"] * grads
        np.copyto(step, np.minimum(step * self.eta_plus, self.delta_max), where=prod > 0)
        np.copyto(step, np.maximum(step * self.eta_minus, self.delta_min), where=prod < 0)
        return prod

    def hyperparameters(self):
        return {**super().hyperparameters(), "eta_minus": self.eta_minus, "eta_plus": self.eta_plus,
                "delta_min": self.delta_min, "delta_max": self.delta_max}


class RpropMinus(_Rprop):
    r"""Rprop- : RPROP without weight-backtracking (Igel & Hüsken 2000, "Improving the Rprop
    learning algorithm", NC 2000). Step sizes as in :class:`_Rprop`, then

    .. math:: \theta_t = \theta_{t-1} - \operatorname{sign}(g_t)\,\Delta_t .
    """

    name = "rprop-"
    _state_names = ("step_size", "prev_grad")

    def _update(self, params, grads, loss):
        self._adapt(grads)
        params -= np.sign(grads) * self.state["step_size"]
        self.state["prev_grad"][...] = grads


class RpropPlus(_Rprop):
    r"""Rprop+ : the original RPROP with weight-backtracking (Riedmiller & Braun 1993, "A direct
    adaptive method for faster backpropagation learning: the RPROP algorithm", ICNN).

    .. math::
        \Delta\theta_t = \begin{cases}
            -\Delta\theta_{t-1} & g_{t-1} g_t < 0 \text{ (undo the last step; then } g_t := 0) \\
            -\operatorname{sign}(g_t)\,\Delta_t & \text{otherwise}
        \end{cases},\qquad \theta_t = \theta_{t-1} + \Delta\theta_t ,

    where storing :math:`g_t := 0` makes the next update a plain step without adaptation.
    """

    name = "rprop+"
    _state_names = ("step_size", "prev_grad", "prev_update")

    def _update(self, params, grads, loss):
        s = self.state
        flipped = self._adapt(grads) < 0
        update = np.where(flipped, -s["prev_update"], -np.sign(grads) * s["step_size"])
        params += update
        s["prev_update"][...] = update
        s["prev_grad"][...] = np.where(flipped, 0.0, grads)


class IRpropMinus(_Rprop):
    r"""iRprop- (Igel & Hüsken 2000, "Improving the Rprop learning algorithm", NC 2000): after a
    sign change the gradient is taken as zero, so that parameter does not move this update and
    its step size is not shrunk again at the next one.

    .. math::
        g_t := 0 \text{ where } g_{t-1} g_t < 0,\qquad
        \theta_t = \theta_{t-1} - \operatorname{sign}(g_t)\,\Delta_t .
    """

    name = "irprop-"
    _state_names = ("step_size", "prev_grad")

    def _update(self, params, grads, loss):
        g = np.where(self._adapt(grads) < 0, 0.0, grads)
        params -= np.sign(g) * self.state["step_size"]
        self.state["prev_grad"][...] = g


class IRpropPlus(_Rprop):
    r"""iRprop+ (Igel & Hüsken 2000, "Improving the Rprop learning algorithm", NC 2000): like
    Rprop+, but a step is undone only where the gradient changed sign *and* the loss rose.

    .. math::
        \Delta\theta_t = \begin{cases}
            -\Delta\theta_{t-1}\,[E_t > E_{t-1}] & g_{t-1} g_t < 0 \text{ (then } g_t := 0) \\
            -\operatorname{sign}(g_t)\,\Delta_t & \text{otherwise}
        \end{cases}

    with :math:`E_t` the loss at :math:`\theta_{t-1}` (the loss the gradient :math:`g_t` belongs
    to) and :math:`E_0 = \infty`. Needs the loss: under a Trainer it costs one extra forward
    pass per update unless the engine passes it.
    """

    name = "irprop+"
    needs_loss = True
    _state_names = ("step_size", "prev_grad", "prev_update")

    def _init_state(self, params):
        state = super()._init_state(params)
        state["prev_loss"] = np.array(np.inf)
        return state

    def _update(self, params, grads, loss):
        s = self.state
        flipped = self._adapt(grads) < 0
        worse = float(loss) > float(s["prev_loss"])
        backtrack = -s["prev_update"] if worse else 0.0
        update = np.where(flipped, backtrack, -np.sign(grads) * s["step_size"])
        params += update
        s["prev_update"][...] = update
        s["prev_grad"][...] = np.where(flipped, 0.0, grads)
        s["prev_loss"][...] = loss


class Quickprop(Optimizer):
    r"""Quickprop (Fahlman 1988, "An empirical study of learning speed in back-propagation
    networks", CMU-CS-88-162): each parameter jumps to the minimum of the parabola through its
    last two gradients, with the safeguards of Fahlman's own code.

    With :math:`d_{t-1}` the previous step, :math:`s = \operatorname{sign}(d_{t-1})`, growth
    limit :math:`\mu` and :math:`\rho = \mu / (1 + \mu)`:

    .. math::
        d_t = \begin{cases}
          -\eta g_t & d_{t-1} = 0 \text{ (first step, or stopped)} \\
          \mu\, d_{t-1} + \ell_t & s\,g_t < \rho\, s\, g_{t-1} \text{ (slope as steep: max growth)} \\
          d_{t-1}\, \dfrac{g_t}{g_{t-1} - g_t} + \ell_t & s\,(g_{t-1} - g_t) < 0 \text{ (the quadratic step)} \\
          -\eta g_t & \text{otherwise (degenerate parabola)}
        \end{cases},
        \qquad \ell_t = -\eta g_t\,[s\, g_t < 0],

    :math:`\theta_t = \theta_{t-1} + d_t`. Safeguards: (1) the step never grows by more than
    :math:`\mu` (default 1.75): the quadratic factor :math:`g_t / (g_{t-1} - g_t)` lies in
    :math:`(-1, \mu]` wherever it is used; (2) the gradient-descent term :math:`\ell_t` is added
    while the slope still points the same way as the last step; (3) the zero denominator
    :math:`g_{t-1} = g_t`, and a parabola opening downwards, cannot reach the quadratic branch
    (the max-growth branch or the plain gradient step takes them), so no division by zero or
    by the wrong sign happens. Fahlman's gradient was a sum over patterns; here it is a mean,
    so :math:`\eta` is N times his :math:`\epsilon`.
    """

    name = "quickprop"
    batch_only = True
    _state_names = ("prev_grad", "prev_update")

    def __init__(self, lr: float = 0.1, mu: float = 1.75, **kwargs):
        super().__init__(lr, **kwargs)
        self.mu = _check_positive("mu (the maximum growth factor)", mu)

    def _update(self, params, grads, loss):
        s = self.state
        d, gp, g = s["prev_update"], s["prev_grad"], grads
        sgn = np.sign(d)
        moving = d != 0
        gradient_step = -self.lr * g
        linear = np.where(sgn * g < 0, gradient_step, 0.0)
        shrink = self.mu / (1.0 + self.mu)
        grow = moving & (sgn * g < shrink * sgn * gp)
        denom = gp - g
        quadratic = moving & ~grow & (sgn * denom < 0)
        safe = np.where(quadratic, denom, 1.0)  # never divides where the branch is not taken
        update = np.where(grow, self.mu * d + linear,
                          np.where(quadratic, d * g / safe + linear, gradient_step))
        params += update
        d[...] = update
        gp[...] = g

    def hyperparameters(self):
        return {**super().hyperparameters(), "mu": self.mu}


class Sarprop(_Rprop):
    r"""SARPROP: iRprop- with simulated annealing in the form of noise and weight decay
    (Treadgold & Gedeon 1998, "Simulated annealing and weight decay in adaptive learning: the
    SARPROP algorithm", IEEE TNN 9(4)).

    With the annealing factor :math:`a_t = 2^{-T t}` and :math:`r \sim U[0, 1)` drawn per
    parameter from the optimizer's own generator:

    .. math::
        \tilde g_t = g_t + k_1\, a_t\, \theta_{t-1}, \qquad
        \Delta_t = \begin{cases}
          \min(\eta^+ \Delta_{t-1}, \Delta_{\max}) & \tilde g_{t-1} \tilde g_t > 0 \\
          \min(\eta^- \Delta_{t-1} + k_3\, r \sqrt{E_t}\, a_t,\ \Delta_{\max})
              & \tilde g_{t-1} \tilde g_t < 0,\ \Delta_{t-1} < k_2 E_t \\
          \max(\eta^- \Delta_{t-1}, \Delta_{\min}) & \tilde g_{t-1} \tilde g_t < 0,\ \Delta_{t-1} \ge k_2 E_t \\
          \Delta_{t-1} & \text{otherwise}
        \end{cases}

    then the iRprop- step on :math:`\tilde g` (no move where the sign changed, and
    :math:`\tilde g_t := 0` there). Early on, small steps that keep flipping sign get kicked by
    noise whose size follows the error, so a net stuck at a poor error keeps searching; the
    noise and the decay fade as :math:`t` grows. :math:`E_t` is the batch loss at
    :math:`\theta_{t-1}` (the paper used the mean squared error). :math:`k_2 = 0.1`,
    :math:`k_3 = 3`, :math:`T = 0.015` and :math:`\Delta_{\min} = 10^{-6}` follow FANN's
    implementation. :math:`k_1` does not: FANN's 0.01 acts on a gradient *summed* over the
    patterns, and on deltaprop's mean gradient it pins small networks at zero weights; the
    default :math:`10^{-4}` was measured on 2-3-1 XOR and 3-bit parity (see
    ``docs/techniques.md``). FANN's decay term also has the opposite sign; here it shrinks the
    weights, as weight decay does. One uniform number per parameter is drawn at every update,
    so the generator advances the same way whatever the
    data.
    """

    name = "sarprop"
    needs_loss = True
    uses_rng = True
    _state_names = ("step_size", "prev_grad")

    def __init__(self, lr: float = 0.1, eta_minus: float = 0.5, eta_plus: float = 1.2,
                 delta_min: float = 1e-6, delta_max: float = 50.0, k1: float = 1e-4, k2: float = 0.1,
                 k3: float = 3.0, temperature: float = 0.015, **kwargs):
        super().__init__(lr, eta_minus, eta_plus, delta_min, delta_max, **kwargs)
        self.k1 = _check_nonnegative("k1", k1)
        self.k2 = _check_nonnegative("k2", k2)
        self.k3 = _check_nonnegative("k3", k3)
        self.temperature = _check_nonnegative("temperature", temperature)

    def _update(self, params, grads, loss):
        s = self.state
        anneal = 2.0 ** (-self.temperature * self.t)
        g = grads + self.k1 * anneal * params
        r = self._generator().random(params.shape, dtype=params.dtype)
        step, prod = s["step_size"], s["prev_grad"] * g
        loss = max(float(loss), 0.0)
        np.copyto(step, np.minimum(step * self.eta_plus, self.delta_max), where=prod > 0)
        kick = (prod < 0) & (step < self.k2 * loss)
        calm = (prod < 0) & ~kick
        noisy = np.minimum(step * self.eta_minus + self.k3 * r * math.sqrt(loss) * anneal, self.delta_max)
        np.copyto(step, noisy, where=kick)
        np.copyto(step, np.maximum(step * self.eta_minus, self.delta_min), where=calm)
        g = np.where(prod < 0, 0.0, g)
        params -= np.sign(g) * step
        s["prev_grad"][...] = g

    def hyperparameters(self):
        return {**super().hyperparameters(), "k1": self.k1, "k2": self.k2, "k3": self.k3,
                "temperature": self.temperature}


class LBFGS(Optimizer):
    r"""L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995, SIAM J. Sci. Comput. 16(5)), scipy's
    ``scipy.optimize.minimize(method="L-BFGS-B")``, on the whole training set's loss

    :math:`F(\theta) = E(\theta) + \tfrac{\lambda}{2}\lVert m \odot \theta \rVert^2`

    (:math:`E` the mean loss over all rows, weighted where sample weights are given;
    :math:`\lambda` ``weight_decay``, :math:`m` the weight mask: biases not decayed). Each
    iteration is :math:`\theta_{k+1} = \theta_k - \alpha_k H_k \nabla F(\theta_k)`, with
    :math:`H_k` the inverse-Hessian estimate built from the last ``maxcor`` pairs
    :math:`(\theta_{i+1} - \theta_i, \nabla F_{i+1} - \nabla F_i)` and :math:`\alpha_k` found by a
    line search (several evaluations of :math:`F` and its gradient).

    Unlike the other rules it is not one update after one gradient: it runs its own loop
    (``runs_own_loop``), scipy's, and :class:`~deltaprop.training.Trainer` hands it the epochs:
    **one epoch is one iteration**, after which the epoch's record, evaluation and callbacks run
    as for any rule (a callback's ``stop_training`` ends the minimisation). Batch mode only.
    ``lr`` is not used (the line search picks each step). ``max_fun`` bounds the evaluations of
    :math:`F` over the run (scikit-learn's ``max_fun``), ``tol`` is scipy's ``gtol`` (stop when
    every entry of the projected gradient is at most ``tol``); scipy also stops when an
    iteration lowers :math:`F` by less than ``ftol`` (2.2e-9) relative to
    :math:`\max(|F|, 1)`. Why the run ended is a history event (``converged`` or
    ``lbfgs_stopped``). Gradient noise and other transforms are refused: the line search needs
    the true :math:`F` and gradient.

    State: ``t`` (iterations) and ``n_fun`` (evaluations). The curvature pairs live inside
    scipy and are not saved: a run resumed from a checkpoint (or a second ``fit``) continues
    from the same weights, iteration count and evaluation budget with a fresh memory, so its
    next steps differ from the uninterrupted run's (close, not bit for bit).
    """

    name = "lbfgs"
    batch_only = True
    #: The rule drives the loop itself (scipy's minimize); the Trainer calls :meth:`run`.
    runs_own_loop = True

    def __init__(self, lr: float = 0.1, *, max_fun: int = 15000, tol: float = 1e-5, maxcor: int = 10, **kwargs):
        super().__init__(lr, **kwargs)
        if self.grad_noise or self._explicit is not None:
            raise ConfigError(_("optimizer {name!r} takes weight_decay only: gradient noise and other gradient "
                                "transforms would break its line search").format(name="lbfgs"))
        if isinstance(max_fun, bool) or int(max_fun) != max_fun or max_fun < 1:
            raise ConfigError(_("{name} must be an integer >= 1, got {value!r}").format(name="max_fun", value=max_fun))
        if isinstance(maxcor, bool) or int(maxcor) != maxcor or maxcor < 1:
            raise ConfigError(_("{name} must be an integer >= 1, got {value!r}").format(name="maxcor", value=maxcor))
        self.max_fun, self.maxcor = int(max_fun), int(maxcor)
        self.tol = _check_nonnegative("tol", tol)
        self.n_fun = 0
        #: per iteration of the last run, F at the new iterate (penalty included)
        self.objective: list[float] = []
        self.status, self.message = None, ""

    def _update(self, params, grads, loss):
        raise ConfigError(_("optimizer {name!r} runs its own loop (scipy's): train it with a Trainer in batch "
                            "mode").format(name="lbfgs"))

    def hyperparameters(self):
        return {**super().hyperparameters(), "max_fun": self.max_fun, "tol": self.tol, "maxcor": self.maxcor}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "n_fun": self.n_fun}

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        self.n_fun = int(d.get("n_fun", 0))

    def run(self, trainer, X, T, iterations: int, epoch_end, objective=None) -> None:
        """At most ``iterations`` iterations from ``trainer.network``'s weights;
        ``epoch_end(loss_before)`` runs after each (the weights at the new iterate) and returns
        True to stop. The weights end at the last accepted iterate (or where a callback put
        them), also when an exception (Ctrl-C) ends the run. ``objective()``: the mean loss and
        its gradient over all rows at the network's current weights (default
        ``Network.loss_and_gradient`` in this process; DaskEngine's sums them on the workers)."""
        try:
            import scipy.optimize
        except ImportError:
            raise ConfigError(_("optimizer {name!r} needs scipy: pip install 'deltaprop[lbfgs]'").format(
                name="lbfgs")) from None
        net = trainer.network
        params, chunk, weights = net.params, trainer.chunk_size, trainer.sample_weight
        mask = None
        if self.weight_decay:
            mask = np.ones(params.size) if self.decay_biases else net.weight_mask()[:params.size].astype(np.float64)
        lam = self.weight_decay
        self.objective, self.status, self.message = [], None, ""
        left = self.max_fun - self.n_fun
        if left < 1 or iterations < 1:
            self.status, self.message = 1, "no evaluations left (max_fun)" if left < 1 else "no iterations asked for"
            return

        before = [None]  # the data loss at the iterate an iteration starts from

        def fun(theta):
            self.n_fun += 1
            params[...] = theta
            loss, grad = net.loss_and_gradient(X, T, chunk, weights) if objective is None else objective()
            if before[0] is None:  # scipy's first evaluation is at the starting weights
                before[0] = float(loss)
            grad = grad.astype(np.float64)
            if lam:
                wt = theta * mask
                return float(loss) + 0.5 * lam * float(wt @ wt), grad + lam * wt
            return float(loss), grad

        accepted = params.astype(np.float64)

        def callback(intermediate_result):  # scipy passes the iterate's OptimizeResult by this name
            nonlocal accepted
            self.t += 1
            accepted = np.array(intermediate_result.x, dtype=np.float64)
            params[...] = accepted
            f = float(intermediate_result.fun)
            self.objective.append(f)
            wt = accepted * mask if lam else None
            loss_before, before[0] = before[0], f - (0.5 * lam * float(wt @ wt) if lam else 0.0)
            stop = epoch_end(loss_before)
            accepted = params.astype(np.float64)  # a callback may have moved them (EarlyStopping)
            if stop:
                raise StopIteration

        try:
            res = scipy.optimize.minimize(fun, params.astype(np.float64), method="L-BFGS-B", jac=True,
                                          callback=callback,
                                          options={"maxfun": left, "maxiter": int(iterations), "gtol": self.tol,
                                                   "maxcor": self.maxcor})
        finally:
            params[...] = accepted
        self.status = int(res.status)
        self.message = res.message.decode() if isinstance(res.message, bytes) else str(res.message)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Adam, RpropMinus, RpropPlus, IRpropMinus, IRpropPlus, Quickprop, Sarprop, LBFGS)
}


def get_optimizer(spec, **kwargs) -> Optimizer:
    """Return an optimizer from a name (plus keyword hyper-parameters) or an instance."""
    if isinstance(spec, Optimizer):
        return spec
    if spec not in OPTIMIZERS:
        raise unknown_name("optimizer", str(spec), OPTIMIZERS)
    bad = unknown_keywords("optimizer", spec, OPTIMIZERS[spec], kwargs, skip=("lr", "transforms"))
    if bad is not None:
        raise bad
    try:
        return OPTIMIZERS[spec](**kwargs)
    except (TypeError, ValueError) as exc:  # an unknown keyword; a text value where a number goes
        raise ConfigError(_("optimizer {name!r}: {reason}").format(name=spec, reason=exc)) from None
