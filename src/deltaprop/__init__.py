"""deltaprop: multilayer networks trained by backpropagation, explained and fast on a CPU.

>>> import deltaprop as dp
>>> net = dp.Network([2, 2, 1], activation="sigmoid", loss="half_sse", seed=0)
>>> history = dp.train(net, X, T, mode="stochastic", epochs=100, lr=0.5, seed=0)  # doctest: +SKIP
"""

from .activations import ACTIVATIONS, get_activation
from .errors import ConfigError, DataError, DeltapropError, ModelFileError
from .gradcheck import gradcheck
from .io import load_model, save_model
from .layers import Dense
from .losses import LOSSES, get_loss
from .network import Network
from .optimizers import OPTIMIZERS, SGD, Optimizer, get_optimizer
from .training import MODES, Callback, EarlyStopping, History, Trainer, train

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "LOSSES", "MODES", "OPTIMIZERS",
    "Callback", "ConfigError", "DataError", "Dense", "DeltapropError", "EarlyStopping", "History",
    "ModelFileError", "Network", "Optimizer", "SGD", "Trainer",
    "get_activation", "get_loss", "get_optimizer", "gradcheck", "load_model", "save_model", "train",
    "__version__",
]
