"""deltaprop: multilayer networks trained by backpropagation, explained and fast on a CPU.

>>> import deltaprop as dp
>>> net = dp.Network([2, 2, 1], activation="sigmoid", loss="half_sse", seed=0)
>>> history = dp.train(net, X, T, mode="stochastic", epochs=100, lr=0.5, seed=0)  # doctest: +SKIP

The public API is listed in ``__all__``; optional parts with extra dependencies live in their
own modules (``deltaprop.sklearn``, ``deltaprop.plot``, ``deltaprop.export``) and are imported
only when used.
"""

from .activations import ACTIVATIONS, get_activation
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import ConfigError, DataError, DeltapropError, ModelFileError
from .explain import explain, explain_worked_example
from .gradcheck import gradcheck
from .io import load_model, save_model
from .layers import Dense
from .losses import LOSSES, get_loss
from .model import Model, fit_dataset
from .network import Network
from .optimizers import (OPTIMIZERS, SGD, Adam, IRpropMinus, IRpropPlus, Optimizer, Quickprop, RpropMinus,
                         RpropPlus, Sarprop, get_optimizer)
from .schedules import SCHEDULES, BoldDriver, ExponentialDecay, InverseScaling, StepDecay, get_schedule
from .techniques import StallDetector, train_with_restarts, use_flat_spot
from .training import MODES, Callback, EarlyStopping, History, Trainer, train

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "LOSSES", "MODES", "OPTIMIZERS", "SCHEDULES",
    "Adam", "BoldDriver", "Callback", "ConfigError", "DataError", "Dense", "DeltapropError", "EarlyStopping",
    "ExponentialDecay", "History", "IRpropMinus", "IRpropPlus", "InverseScaling", "Model", "ModelFileError",
    "Network", "Optimizer", "Quickprop", "RpropMinus", "RpropPlus", "SGD", "Sarprop", "StallDetector",
    "StepDecay", "Trainer",
    "explain", "explain_worked_example", "fit_dataset", "get_activation", "get_loss", "get_optimizer",
    "get_schedule", "gradcheck", "load_checkpoint", "load_model", "save_checkpoint", "save_model", "train",
    "train_with_restarts", "use_flat_spot",
    "__version__",
]
