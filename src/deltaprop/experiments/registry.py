"""The problems and techniques that ``deltaprop compare`` crosses with the three modes.

To add a problem or a technique: one entry in ``PROBLEMS`` or ``TECHNIQUES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import unknown_name
from ..i18n import N_

__all__ = ["Problem", "Technique", "PRESETS", "PROBLEMS", "TECHNIQUES", "get_problem", "get_technique"]


@dataclass(frozen=True)
class Problem:
    """A data set shipped in the package with the network and settings it is classically run with.

    ``lr`` gives the learning rate of plain gradient descent per mode (a batch update moves the
    weights by one mean gradient, so batch mode classically uses a larger rate); ``success``
    is the default success criterion (see :func:`deltaprop.experiments.runner.parse_success`).
    """

    name: str
    dataset: str
    hidden: tuple
    activation: str
    output_activation: str
    loss: str
    lr: dict
    batch_size: int
    epochs: int
    success: str
    init_range: float = 0.5
    test_fraction: float = 0.0
    standardize: bool = False
    note: str = ""


PROBLEMS: dict[str, Problem] = {p.name: p for p in (
    Problem("xor", "xor", (2,), "sigmoid", "sigmoid", "half_sse",
            {"stochastic": 0.5, "minibatch": 0.5, "batch": 2.0}, 2, 5000, "correct",
            note="2-2-1: no true local minima (Hamey 1998; Sprinkhuizen-Kuyper & Boers 1996), but plateaus"),
    Problem("xor231", "xor", (3,), "sigmoid", "sigmoid", "half_sse",
            {"stochastic": 0.5, "minibatch": 0.5, "batch": 2.0}, 2, 5000, "correct",
            note="2-3-1: has local minimum regions (Sprinkhuizen-Kuyper & Boers 1999)"),
    Problem("parity", "parity", (3,), "sigmoid", "sigmoid", "half_sse",
            {"stochastic": 0.5, "minibatch": 0.5, "batch": 2.0}, 4, 5000, "correct",
            note="3-bit parity, 3-3-1"),
    Problem("encoder", "encoder", (3,), "sigmoid", "sigmoid", "half_sse",
            {"stochastic": 0.5, "minibatch": 1.0, "batch": 2.0}, 4, 5000, "correct",
            note="8-3-8 encoder"),
    Problem("spirals", "spirals", (20, 20), "relu", "sigmoid", "binary_cross_entropy",
            {"stochastic": 0.01, "minibatch": 0.05, "batch": 0.2}, 16, 2000, "accuracy>=0.99",
            init_range=1.0, standardize=True, note="two spirals, 2-20-20-1 ReLU"),
    Problem("digits", "digits", (32,), "tanh", "softmax", "cross_entropy",
            {"stochastic": 0.01, "minibatch": 0.1, "batch": 0.5}, 32, 60, "loss<=0.05",
            init_range=0.1, test_fraction=0.25, standardize=True, note="8x8 digits, 64-32-10, 25% test split"),
)}


@dataclass(frozen=True)
class Technique:
    """An optimizer (name and parameters, from :data:`deltaprop.optimizers.OPTIMIZERS`) plus
    callbacks (built fresh for every run) and network changes.

    ``lr``: None keeps the problem's plain-GD rate for the mode; a number replaces it.
    """

    name: str
    optimizer: str = "sgd"
    params: dict = field(default_factory=dict)
    lr: float | None = None
    callbacks: tuple = ()  # (kind, kwargs) pairs; kinds in runner._CALLBACKS
    flat_spot: float = 0.0
    description: str = ""


TECHNIQUES: dict[str, Technique] = {t.name: t for t in (
    Technique("gd", description=N_("plain gradient descent")),
    Technique("momentum", params={"momentum": 0.9}, description=N_("momentum 0.9")),
    Technique("nesterov", params={"momentum": 0.9, "nesterov": True}, description=N_("Nesterov momentum 0.9")),
    Technique("adam", "adam", lr=0.05, description=N_("Adam, lr 0.05")),
    Technique("bold-driver", callbacks=(("bold_driver", {}),),
              description=N_("bold driver: x1.1 after a better epoch, undo and x0.5 after a worse one")),
    Technique("flat-spot", flat_spot=0.1, description=N_("Fahlman's flat-spot fix: sigmoid' + 0.1")),
    Technique("grad-noise", params={"grad_noise": 0.3, "noise_decay": 0.55},
              description=N_("annealed gradient noise, s.d. 0.3/(1+t)^0.275")),
    Technique("stall-restart", callbacks=(("stall", {"patience": 1000, "min_improvement": 0.01,
                                                     "remedy": "restart"}),),
              description=N_("stall detection (1% within 1000 epochs) -> restart with new weights")),
    Technique("stall-jitter", callbacks=(("stall", {"patience": 1000, "min_improvement": 0.01,
                                                    "remedy": "jitter", "jitter": 0.5}),),
              description=N_("stall detection (1% within 1000 epochs) -> jitter the weights (s.d. 0.5)")),
    Technique("rprop-", "rprop-", lr=0.1, description=N_("Rprop- (batch only)")),
    Technique("irprop+", "irprop+", lr=0.1, description=N_("iRprop+ (batch only)")),
    Technique("irprop-", "irprop-", lr=0.1, description=N_("iRprop- (batch only)")),
    Technique("quickprop", "quickprop", description=N_("Quickprop, mu 1.75 (batch only)")),
    Technique("sarprop", "sarprop", lr=0.1, description=N_("SARPROP: Rprop with annealed noise (batch only)")),
    Technique("lbfgs", "lbfgs", description=N_("L-BFGS-B through scipy, an epoch per iteration; samples count "
                                               "its loss evaluations (batch only)")),
    Technique("rprop-+stall", "rprop-", lr=0.1,
              callbacks=(("stall", {"patience": 100, "min_improvement": 0.01, "remedy": "restart"}),),
              description=N_("Rprop- with stall detection (1% within 100 epochs) -> restart (batch only)")),
    Technique("irprop++stall", "irprop+", lr=0.1,
              callbacks=(("stall", {"patience": 100, "min_improvement": 0.01, "remedy": "restart"}),),
              description=N_("iRprop+ with stall detection (1% within 100 epochs) -> restart (batch only)")),
)}


#: Named sets of grids: (problems, techniques, seeds). ``deltaprop compare --preset docs`` runs
#: the comparison behind docs/experiments.md in under 10 minutes on 2 cores.
_CLASSIC = ("gd", "momentum", "adam", "bold-driver", "flat-spot", "stall-jitter",
            "rprop-", "irprop+", "quickprop", "rprop-+stall", "irprop++stall")
PRESETS: dict[str, tuple] = {
    "docs": (
        (("xor",), _CLASSIC, 50),
        (("xor231", "parity"), _CLASSIC, 20),
        (("encoder",), ("gd", "momentum", "adam", "rprop-", "irprop+"), 20),
        (("spirals",), ("gd", "momentum", "adam", "irprop+"), 5),
        (("digits",), ("gd", "momentum", "adam"), 5),
    ),
    "smoke": ((("xor",), ("gd", "rprop-"), 2),),
}


def get_problem(name: str) -> Problem:
    if name not in PROBLEMS:
        raise unknown_name("problem", name, PROBLEMS)
    return PROBLEMS[name]


def get_technique(name: str) -> Technique:
    if name not in TECHNIQUES:
        raise unknown_name("technique", name, TECHNIQUES)
    return TECHNIQUES[name]
