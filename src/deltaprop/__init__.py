"""deltaprop: multilayer networks trained by backpropagation, explained and fast on a CPU.

>>> import deltaprop as dp
>>> net = dp.Network([2, 2, 1], activation="sigmoid", loss="half_sse", seed=0)
>>> history = dp.train(net, X, T, mode="stochastic", epochs=100, lr=0.5, seed=0)  # doctest: +SKIP

The public API is listed in ``__all__``; optional parts with extra dependencies live in their
own modules (``deltaprop.sklearn``, ``deltaprop.plot``, ``deltaprop.export``) and are imported
only when used.
"""

import importlib

from .activations import ACTIVATIONS, get_activation
from .errors import ConfigError, DataError, DeltapropError, ModelFileError
# gradcheck is imported eagerly: importing the submodule deltaprop.gradcheck later would
# otherwise shadow the function with the module. (For the same reason the function
# explain() is reached as deltaprop.explain.explain.)
from .gradcheck import gradcheck
from .layers import Dense
from .losses import LOSSES, get_loss
from .network import Network
from .optimizers import (OPTIMIZERS, SGD, Adam, IRpropMinus, IRpropPlus, Optimizer, Quickprop, RpropMinus,
                         RpropPlus, Sarprop, get_optimizer)
from .training import MODES, Callback, EarlyStopping, History, Trainer, train
from .transforms import AddDecayedWeights, AddNoise, GradientTransform

# Imported on first use (PEP 562), so that `import deltaprop` stays fast.
_LAZY = {
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "explain_worked_example": "explain", "explain_model": "explain",
    "load_model": "io", "save_model": "io",
    "Model": "model", "fit_dataset": "model",
    "SCHEDULES": "schedules", "BoldDriver": "schedules", "ExponentialDecay": "schedules",
    "InverseScaling": "schedules", "StepDecay": "schedules", "get_schedule": "schedules",
    "StallDetector": "techniques", "train_with_restarts": "techniques", "use_flat_spot": "techniques",
}


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'deltaprop' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
