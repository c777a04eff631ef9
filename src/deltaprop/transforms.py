r"""Gradient transformations: what happens to the gradient before an update rule sees it.

A transformation maps the batch gradient :math:`g_t` to a new one, given the parameters
:math:`\theta_{t-1}` it was computed at and the update count :math:`t` (symbols as in
:mod:`deltaprop.optimizers`). An optimizer applies its chain in order, first to last, and
hands the result to its rule, so any rule (SGD, Adam, RPROP, ...) takes any chain::

    from deltaprop import SGD
    from deltaprop.transforms import AddDecayedWeights, AddNoise

    opt = SGD(lr=0.1, transforms=[AddDecayedWeights(1e-3, mask=net.weight_mask()), AddNoise(0.01)])

which is what ``SGD(lr=0.1, weight_decay=1e-3, grad_noise=0.01)`` builds under a
:class:`~deltaprop.training.Trainer` (see :func:`from_options`).

Transformations hold hyper-parameters only. The two things that change from update to update,
:math:`t` and the random generator, belong to the optimizer and are passed in: one counter and
one generator per optimizer, already in its ``state_dict``, so a checkpoint holds every bit a
resumed run needs, and the generator's draws come in the same order as when these options
were flags of the optimizer (noise first, then the rule's own draws, as SARPROP's).

To add one: subclass :class:`GradientTransform`, set ``name`` and ``uses_rng``, implement
``__call__`` (returning a new array, never changing ``g`` in place: ``g`` may be the network's
own gradient buffer) and ``hyperparameters``.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError
from .i18n import gettext as _

__all__ = ["GradientTransform", "AddDecayedWeights", "AddNoise", "from_options"]

#: The default of :class:`AddNoise`'s ``gamma`` and of the optimizers' ``noise_decay``.
NOISE_DECAY = 0.55


def check_nonnegative(name: str, value: float) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ConfigError(_("{name} must be a number >= 0, got {value}").format(name=name, value=value))

    return value


class GradientTransform:
    """Base class: calling it as ``transform(g, params, t, rng)`` returns the new gradient."""

    #: The optimizer keyword this transformation stands for (used in messages).
    name = ""
    #: Whether ``__call__`` draws from ``rng``; the optimizer passes ``None`` otherwise.
    uses_rng = False

    def __call__(self, g: np.ndarray, params: np.ndarray, t: int,
                 rng: np.random.Generator | None) -> np.ndarray:
        raise NotImplementedError

    def hyperparameters(self) -> dict:
        return {}

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({hp})"


class AddDecayedWeights(GradientTransform):
    r"""Coupled L2 weight decay: :math:`g \leftarrow g + \lambda\, m \odot \theta`, the gradient
    of the loss :math:`E + \tfrac{\lambda}{2}\lVert m \odot \theta \rVert^2`.

    ``mask`` :math:`m` has the parameters' shape; ``None`` decays every entry.
    :meth:`Network.weight_mask <deltaprop.network.Network.weight_mask>` gives the usual one,
    1 for weights and 0 for biases.
    """

    name = "weight_decay"

    def __init__(self, weight_decay: float, mask: np.ndarray | None = None):
        self.weight_decay = check_nonnegative("weight decay", weight_decay)
        self.mask = None if mask is None else np.asarray(mask)

    def __call__(self, g, params, t, rng):
        # params * mask, not np.where: bit for bit what the optimizers computed before
        # this was a transformation, so old checkpoints resume to the same weights
        decayed = params if self.mask is None else params * self.mask
        return g + self.weight_decay * decayed

    def hyperparameters(self):
        return {"weight_decay": self.weight_decay, "masked": self.mask is not None}


class AddNoise(GradientTransform):
    r"""Annealed Gaussian gradient noise (Neelakantan et al. 2015, "Adding gradient noise
    improves learning for very deep networks"):

    .. math:: g \leftarrow g + \sigma_t\, \xi,\qquad \xi \sim N(0, I),\qquad
              \sigma_t^2 = \frac{\nu}{(1 + t)^{\gamma}},

    :math:`\xi` drawn from the optimizer's generator in the parameters' dtype.
    """

    name = "grad_noise"
    uses_rng = True

    def __init__(self, nu: float, gamma: float = NOISE_DECAY):
        self.nu = check_nonnegative("gradient noise", nu)
        self.gamma = check_nonnegative("noise decay", gamma)

    def __call__(self, g, params, t, rng):
        sigma = math.sqrt(self.nu / (1.0 + t) ** self.gamma)
        return g + sigma * rng.standard_normal(g.shape, dtype=params.dtype)

    def hyperparameters(self):
        return {"nu": self.nu, "gamma": self.gamma}


def from_options(weight_decay: float = 0.0, grad_noise: float = 0.0, noise_decay: float = NOISE_DECAY,
                 mask: np.ndarray | None = None) -> list[GradientTransform]:
    """The chain the optimizers' ``weight_decay``, ``grad_noise`` and ``noise_decay`` options
    stand for: decay, then noise (noise on the decayed gradient, the order they always had);
    an option at 0 adds nothing, so a rule without them sees its gradient untouched."""
    chain: list[GradientTransform] = []
    if weight_decay:
        chain.append(AddDecayedWeights(weight_decay, mask))
    if grad_noise:
        chain.append(AddNoise(grad_noise, noise_decay))
    return chain
