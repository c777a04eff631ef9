"""Data sets shipped inside the package: nothing is downloaded.

=========  =======  ========  ==========================================================
name       samples  features  source
=========  =======  ========  ==========================================================
xor        4        2         the XOR truth table (binary target)
parity     8        3         3-bit parity (odd number of ones -> 1)
encoder    8        8         the 8-3-8 encoder: reproduce a one-hot input (Rumelhart et al. 1986)
spirals    194      2         two spirals, 97 points each (Lang & Witbrock 1988)
iris       150      4         Fisher's iris, 3 species (UCI ML repository, CC BY 4.0)
digits     1797     64        8x8 handwritten digits, 10 classes (UCI "Optical Recognition
                              of Handwritten Digits", test part; CC BY 4.0)
=========  =======  ========  ==========================================================
"""

from __future__ import annotations

import itertools
from importlib import resources

import numpy as np

from ..errors import unknown_name
from ..i18n import N_
from .csvfile import load_csv
from .dataset import Dataset

__all__ = ["BUILTIN", "load_builtin", "builtin_info", "builtin_defaults"]


def _xor() -> Dataset:
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    T = np.array([[0], [1], [1], [0]], float)
    return Dataset(X, T, "classification", "xor", ["a", "b"], ["a_xor_b"], [0, 1],
                   "XOR truth table")


def _parity(bits: int = 3) -> Dataset:
    X = np.array(list(itertools.product([0, 1], repeat=bits)), float)
    T = (X.sum(axis=1) % 2).reshape(-1, 1)
    return Dataset(X, T, "classification", "parity", [f"bit{i}" for i in range(bits)], ["odd"], [0, 1],
                   f"{bits}-bit parity")


def _encoder(n: int = 8) -> Dataset:
    X = np.eye(n)
    return Dataset(X, X.copy(), "regression", "encoder", [f"in{i}" for i in range(n)],
                   [f"out{i}" for i in range(n)], None, f"{n}-{int(np.log2(n))}-{n} encoder")


def _spirals() -> Dataset:
    i = np.arange(97)
    angle = i * np.pi / 16.0
    radius = 6.5 * (104 - i) / 104.0
    x, y = radius * np.sin(angle), radius * np.cos(angle)
    X = np.concatenate([np.stack([x, y], 1), np.stack([-x, -y], 1)]) / 6.5
    T = np.concatenate([np.ones(97), np.zeros(97)]).reshape(-1, 1)
    return Dataset(X, T, "classification", "spirals", ["x", "y"], ["spiral"], [0, 1],
                   "two spirals (Lang & Witbrock 1988), coordinates scaled to [-1, 1]")


def _packaged_csv(filename: str, target: str, name: str, description: str) -> Dataset:
    with resources.as_file(resources.files("deltaprop.data") / filename) as path:
        ds = load_csv(path, target, task="classification", name=name)
    ds.description = description
    return ds


_LOGIC = {"activation": "sigmoid", "loss": "half_sse", "init": "uniform:0.5", "val_split": 0.0,
          "standardize": False}

#: name -> (loader, samples, features, source, recommended training settings). The CLI uses
#: the settings for every flag the user leaves out, so ``deltaprop train --data xor`` works.
BUILTIN = {
    "xor": (_xor, 4, 2, N_("XOR truth table"),
            _LOGIC | {"hidden": "2", "mode": "stochastic", "lr": 0.5, "epochs": 5000}),
    "parity": (_parity, 8, 3, N_("3-bit parity"),
               _LOGIC | {"hidden": "3", "mode": "stochastic", "lr": 0.5, "epochs": 5000}),
    "encoder": (_encoder, 8, 8, N_("8-3-8 encoder (Rumelhart, Hinton & Williams 1986)"),
                _LOGIC | {"hidden": "3", "mode": "stochastic", "lr": 0.5, "epochs": 5000}),
    "spirals": (_spirals, 194, 2, N_("two spirals (Lang & Witbrock 1988)"),
                # Plain gradient descent crawls on this set; Adam with ReLU units solves it.
                {"hidden": "20,20", "activation": "relu", "init": "he_uniform", "optimizer": "adam",
                 "mode": "minibatch", "batch_size": 16, "lr": 0.005, "epochs": 2000, "val_split": 0.0}),
    "iris": (lambda: _packaged_csv("iris.csv", "species", "iris", "Fisher's iris (UCI, CC BY 4.0)"),
             150, 4, N_("Fisher's iris, 3 species (UCI ML repository, CC BY 4.0)"),
             {"hidden": "8", "activation": "tanh", "mode": "minibatch", "batch_size": 16, "lr": 0.1,
              "epochs": 100}),
    "digits": (lambda: _packaged_csv("digits.csv.gz", "digit", "digits",
                                     "8x8 handwritten digits (UCI, CC BY 4.0)"),
               1797, 64, N_("8x8 handwritten digits, 10 classes (UCI optdigits, CC BY 4.0)"),
               {"hidden": "64", "activation": "tanh", "mode": "minibatch", "batch_size": 32, "lr": 0.1,
                "epochs": 40}),
}


def load_builtin(name: str) -> Dataset:
    """Load a built-in data set by name (see :data:`BUILTIN`)."""
    if name not in BUILTIN:
        raise unknown_name("built-in data set", name, BUILTIN)
    return BUILTIN[name][0]()


def builtin_info() -> list[tuple[str, int, int, str]]:
    """(name, samples, features, source) for every built-in set; the source in English (marked
    for the catalog: ``gettext(source)`` shows it in the language in force)."""

    return [(k, v[1], v[2], v[3]) for k, v in BUILTIN.items()]


def builtin_defaults(name: str) -> dict:
    """Recommended training settings for a built-in set (empty for unknown names)."""
    return dict(BUILTIN[name][4]) if name in BUILTIN else {}
