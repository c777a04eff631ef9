"""deltaprop: multilayer networks trained by backpropagation, explained and fast on a CPU.

>>> import deltaprop as dp
>>> net = dp.Network([2, 2, 1], activation="sigmoid", loss="half_sse", seed=0)
>>> history = dp.train(net, X, T, mode="stochastic", epochs=100, lr=0.5, seed=0)  # doctest: +SKIP

The public API is listed in ``__all__``; each name is imported on its first use, so that
``import deltaprop`` is quick. Optional parts with extra dependencies live in their own modules
(``deltaprop.sklearn``, ``deltaprop.plot``, ``deltaprop.export``).
"""

import importlib as _importlib
import sys as _sys
import types as _types

from .errors import ConfigError, DataError, DeltapropError, ModelFileError

# Every public name is imported on first use (PEP 562, the pattern of Scientific Python's
# SPEC 1), so that `import deltaprop` costs a few milliseconds and NumPy is loaded only by the
# first use of the library: a command-line help, an argument error or a tool that only
# inspects the package does not pay for it. The errors above need no NumPy and stay eager, for
# `except deltaprop.ConfigError`.
_LAZY = {
    "ACTIVATIONS": "activations", "get_activation": "activations",
    "gradcheck": "gradcheck",
    "Dense": "layers",
    "LOSSES": "losses", "get_loss": "losses",
    "Network": "network",
    "OPTIMIZERS": "optimizers", "SGD": "optimizers", "Adam": "optimizers", "IRpropMinus": "optimizers",
    "IRpropPlus": "optimizers", "Optimizer": "optimizers", "Quickprop": "optimizers",
    "RpropMinus": "optimizers", "RpropPlus": "optimizers", "Sarprop": "optimizers",
    "get_optimizer": "optimizers",
    "MODES": "training", "Callback": "training", "EarlyStopping": "training", "History": "training",
    "Trainer": "training", "train": "training",
    "AddDecayedWeights": "transforms", "AddNoise": "transforms", "GradientTransform": "transforms",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "explain_worked_example": "explain", "explain_model": "explain",
    "load_model": "io", "save_model": "io",
    "Model": "model", "fit_dataset": "model",
    "SCHEDULES": "schedules", "BoldDriver": "schedules", "ExponentialDecay": "schedules",
    "InverseScaling": "schedules", "StepDecay": "schedules", "get_schedule": "schedules",
    "StallDetector": "techniques", "train_with_restarts": "techniques", "use_flat_spot": "techniques",
}


_SUBMODULES = frozenset(set(_LAZY.values()) | {"config", "engines", "errors", "i18n", "initializers", "memory",
                                               "validation"})


def __getattr__(name):
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(_importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value
    # A submodule reached as an attribute (deltaprop.training.Trainer after `import deltaprop`)
    # worked for the modules the package once imported eagerly; it still does for those.
    # Others (deltaprop.sklearn, .plot, .export, ...) are imported by name, as before.
    if name in _SUBMODULES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _Package(_types.ModuleType):
    """The package's own module type, for one name: ``deltaprop.gradcheck`` is the function
    :func:`deltaprop.gradcheck.gradcheck`, while the module of the same name is where it lives.
    The import system sets the package's attribute to a submodule when it first loads one, so
    whichever code imports the module first would hide the function; the function is kept."""

    def __setattr__(self, name, value):
        own = isinstance(value, _types.ModuleType) and value.__name__ == f"{__name__}.gradcheck"
        if name == "gradcheck" and own:
            value = value.gradcheck
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "LOSSES", "MODES", "OPTIMIZERS", "SCHEDULES",
    "AddDecayedWeights", "AddNoise", "Adam", "BoldDriver", "Callback", "ConfigError", "DataError", "Dense",
    "DeltapropError", "EarlyStopping", "ExponentialDecay", "GradientTransform", "History", "IRpropMinus",
    "IRpropPlus", "InverseScaling", "Model", "ModelFileError", "Network", "Optimizer", "Quickprop",
    "RpropMinus", "RpropPlus", "SGD", "Sarprop", "StallDetector", "StepDecay", "Trainer",
    "explain_model", "explain_worked_example", "fit_dataset", "get_activation", "get_loss", "get_optimizer",
    "get_schedule", "gradcheck", "load_checkpoint", "load_model", "save_checkpoint", "save_model", "train",
    "train_with_restarts", "use_flat_spot",
    "__version__",
]
