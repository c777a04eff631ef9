r"""scikit-learn estimators: :class:`BackpropClassifier` and :class:`BackpropRegressor`.

They follow the estimator contract (``get_params``/``set_params``/``clone``, input validation,
``n_features_in_``, ``feature_names_in_``, ``classes_``, pickling), so they work in
``Pipeline``, ``GridSearchCV`` and ``cross_val_score``; the test suite runs scikit-learn's own
``parametrize_with_checks`` on both. scikit-learn is an optional extra
(``pip install deltaprop[sklearn]``); ``import deltaprop`` never imports it.

Training is the library's: a :class:`~deltaprop.network.Network` trained by a
:class:`~deltaprop.training.Trainer` (the one training loop) with an optimizer from
:data:`deltaprop.optimizers.OPTIMIZERS`, an optional learning-rate schedule from
``deltaprop.schedules`` and :class:`~deltaprop.training.EarlyStopping`.

Conventions (the library's, see the README):

* the loss of a batch is the **mean** over its samples of the per-sample loss, so ``lr`` means
  the same thing in the three modes: ``stochastic`` (N updates per epoch), ``minibatch``
  (:math:`\lceil N/k \rceil` updates of ``batch_size`` k samples) and ``batch`` (1 update);
* the output layer and loss follow the task: softmax + cross-entropy for three or more classes,
  one sigmoid unit + binary cross-entropy for two (``predict_proba`` is then
  :math:`[1 - o, o]`), identity + mean squared error for regression;
* ``loss_curve_`` holds, per epoch, the mean of the batch losses measured *before* each
  update (``loss_running`` in :class:`~deltaprop.training.History`), which is what
  scikit-learn's ``MLPClassifier.loss_curve_`` reports too (with ``alpha=0``);
* all randomness comes from one ``numpy.random.Generator`` made from ``random_state``, used
  in this order: initial weights, the validation split (``early_stopping=True``), then the
  sample order of every epoch. The same integer gives the same model.

Scaling is part of the model (a difference from scikit-learn's ``MLPClassifier`` and
``MLPRegressor``, which use inputs as given and need a ``StandardScaler`` in front):
``standardize=True`` (the default) standardises every input column with the mean and spread of
the data ``fit`` sees (the fitted attributes ``input_mean_`` and ``input_scale_``; a constant
column is only centred), and the regressor also trains on standardised targets
(``target_mean_``, ``target_scale_``) and un-scales its predictions. Raw columns of size 1e-3
and 1e3 then train with the same defaults. ``standardize=False`` uses inputs and targets as
given (the attributes are None). The statistics are fitted by ``fit`` and the first
``partial_fit`` call, and kept by later ``partial_fit`` calls.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .config import DEFAULTS as _D
from .data.dataset import Standardizer
from .errors import ConfigError
from .model import Model, default_head
from .network import Network
from .optimizers import OPTIMIZERS, get_optimizer
from .techniques import build_callbacks
from .training import Callback, History, Trainer
from .validation import as_generator

__all__ = ["BackpropClassifier", "BackpropRegressor"]

#: batch_size="auto" takes min(AUTO_BATCH, n_samples): the library's default k.
AUTO_BATCH = _D.batch_size


class _ValidationScore(Callback):
    """Scores the network on the held-out split after every epoch (accuracy or R^2).

    Runs before :class:`EarlyStopping` in the callback list, so it scores the epoch's own
    weights, before any restore."""

    def __init__(self, estimator, X_val: np.ndarray, y_val: np.ndarray):
        self.estimator, self.X_val, self.y_val = estimator, X_val, y_val
        self.scores: list[float] = []

    def on_epoch_end(self, trainer, logs):
        out = self.estimator._unscale(trainer.network.predict(self.X_val))
        self.scores.append(self.estimator._score_outputs(out, self.y_val))


class _BackpropBase(BaseEstimator):
    """Shared parameters, fitting and pickling; see the two public classes."""

    _task = ""

    # The library's defaults (deltaprop.config.DEFAULTS), except where scikit-learn's MLP has a
    # parameter of its own: those keep its names and defaults (max_iter, validation_fraction,
    # n_iter_no_change, tol, batch_size="auto"), so that its code and grids carry over; and
    # dtype, float64 as scikit-learn's MLP computes, so that results match it (float32: faster).
    def __init__(self, hidden_layer_sizes=_D.hidden, *, activation=_D.activation,
                 output_activation=_D.output_activation, loss=_D.loss, init=_D.init, mode=_D.mode,
                 batch_size="auto", lr=_D.lr, optimizer=_D.optimizer, optimizer_params=None, schedule=_D.schedule,
                 schedule_params=None, max_iter=200, shuffle=_D.shuffle, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, dtype="float64", engine=_D.engine,
                 standardize=True, random_state=None):
        # scikit-learn rule: store the parameters unmodified; validate them in fit.
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.output_activation = output_activation
        self.loss = loss
        self.init = init
        self.mode = mode
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.optimizer_params = optimizer_params
        self.schedule = schedule
        self.schedule_params = schedule_params
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.dtype = dtype
        self.engine = engine
        self.standardize = standardize
        self.random_state = random_state

    # ----------------------------------------------------------------- public API
    def fit(self, X, y):
        """Train a fresh network on ``X`` (n, d) and ``y`` for up to ``max_iter`` epochs.

        With ``early_stopping=True`` a seeded, stratified (classifier) ``validation_fraction``
        of the samples is held out; training stops when the validation loss has not fallen by
        more than ``tol`` for ``n_iter_no_change`` epochs, and the weights of the epoch with the
        lowest validation loss are kept (also when ``max_iter`` ends the run first).
        """
        self._check_settings()
        X, y = self._validate(X, y, reset=True)
        T = self._targets(y, fitting=True)
        self._fit_scaling(X, T)
        X, T = self._scale(X, T)
        self._start(X.shape[1], T.shape[1])
        val, scorer, stopper = None, None, None
        callbacks = list(self._schedule)
        if self.early_stopping:
            train_idx, val_idx = self._split(y, self._rng)
            Xv, yv = X[val_idx], y[val_idx]
            val = (Xv, T[val_idx])
            X, T = X[train_idx], T[train_idx]
            scorer = _ValidationScore(self, Xv, yv)
            stopper, = build_callbacks([("early_stopping", {"patience": self.n_iter_no_change,
                                                             "min_delta": self.tol, "restore_best": True})])
            callbacks += [scorer, stopper]
        self._run(X, T, int(self.max_iter), val, callbacks)
        self.validation_scores_ = None
        self.best_validation_score_ = None
        if stopper is not None:
            if stopper.best_params is not None:
                # EarlyStopping restores the best weights when it stops the run; when max_iter
                # ends it first, keep the best weights too (as scikit-learn's MLP does).
                self.network_.flat[...] = stopper.best_params
                self.best_validation_score_ = scorer.scores[stopper.best_epoch - 1]
            self.validation_scores_ = list(scorer.scores)
        return self

    def _partial_fit(self, X, y, classes=None):
        first = not hasattr(self, "network_")
        if first:
            self._check_settings()
        X, y = self._validate(X, y, reset=first)
        if first:
            T = self._targets(y, fitting=True, classes=classes)
            self._fit_scaling(X, T)
            self._start(X.shape[1], T.shape[1])
            self.validation_scores_ = None
            self.best_validation_score_ = None
        else:
            self._check_classes(classes)
            T = self._targets(y)
        X, T = self._scale(X, T)
        # One epoch over the given samples; early stopping needs a whole data set, so it is
        # not used here (as in scikit-learn's MLP).
        self._run(X, T, 1, None, list(self._schedule))
        return self

    def to_model(self) -> Model:
        """The fitted network as a :class:`deltaprop.model.Model`, to save for the CLI."""
        check_is_fitted(self)
        names = getattr(self, "feature_names_in_", None)
        names = [str(f) for f in names] if names is not None else [f"x{i}" for i in range(self.n_features_in_)]
        classes = None
        if self._task == "classification":
            classes = [c.item() if isinstance(c, np.generic) else c for c in self.classes_]
        std = None if self.input_mean_ is None else Standardizer(self.input_mean_, self.input_scale_)
        tsc = None if self._target_scaler is None else Standardizer(self._target_scaler.mean,
                                                                    self._target_scaler.scale)
        return Model(self.network_, task=self._task, classes=classes, feature_names=names, standardizer=std,
                     target_scaler=tsc)

    @property
    def coefs_(self) -> list[np.ndarray]:
        """Weight matrices, ``coefs_[i]`` of shape ``(n_in, n_out)`` (``z = a @ W + b``)."""
        return [layer.W.copy() for layer in self.network_.layers]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """Bias vectors, ``intercepts_[i]`` of shape ``(n_out,)``."""
        return [layer.b.copy() for layer in self.network_.layers]

    # ----------------------------------------------------------------- fitting
    def _check_settings(self) -> None:
        """Validate the parameters that the library does not check itself (at fit time)."""
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, (int, np.integer)) \
                or self.max_iter < 1:
            raise ConfigError(f"max_iter must be a positive integer, got {self.max_iter!r}")
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) \
                    or self.batch_size < 1:
                raise ConfigError(f"batch_size must be 'auto' or a positive integer, got {self.batch_size!r}")
        if self.early_stopping and not (0.0 < self.validation_fraction < 1.0):
            raise ConfigError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")
        if not isinstance(self.optimizer, str):
            # An instance would carry its state from one fit (and one clone) to the next.
            raise ConfigError(f"optimizer must be a name in deltaprop.optimizers.OPTIMIZERS "
                              f"({', '.join(sorted(OPTIMIZERS))}), got {type(self.optimizer).__name__}")
        for what, params in (("optimizer_params", self.optimizer_params),
                             ("schedule_params", self.schedule_params)):
            if params is not None and not isinstance(params, dict):
                raise ConfigError(f"{what} must be a dict or None, got {type(params).__name__}")
        for key, why in (("lr", "give the learning rate as the estimator's lr"),
                         ("seed", "all randomness comes from random_state")):
            if key in (self.optimizer_params or {}):
                raise ConfigError(f"optimizer_params may not contain {key!r}: {why}")

    def _hidden(self) -> list[int]:
        h = self.hidden_layer_sizes
        sizes = [h] if isinstance(h, (int, np.integer)) and not isinstance(h, bool) else h
        try:
            sizes = list(sizes)
            if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in sizes):
                raise TypeError
        except TypeError:
            raise ConfigError(f"hidden_layer_sizes must be a positive integer or a sequence of them, "
                              f"got {h!r}") from None
        return [int(s) for s in sizes]

    def _start(self, n_features: int, n_outputs: int) -> None:
        """Fresh network, optimizer, generator and records (fit, or a first partial_fit)."""
        self._rng = as_generator(self.random_state, "random_state")
        out_act, loss = default_head(self._task, n_outputs, self.loss, self.output_activation)
        net = Network([n_features, *self._hidden(), n_outputs], self.activation, out_act, loss,
                      dtype=self.dtype, init=self.init)
        if self._task == "classification" and tuple(net.output_activation.output_range) != (0.0, 1.0):
            raise ConfigError(f"a classifier's outputs must lie in [0, 1] to be probabilities; output "
                              f"activation {net.output_activation.name!r} does not")
        net.reset_parameters(self._rng, self.init)
        self.network_ = net
        self.optimizer_ = get_optimizer(self.optimizer, lr=self.lr, **(self.optimizer_params or {}))
        self.history_ = History()
        self.n_iter_ = 0
        self.loss_curve_ = []
        self.n_outputs_ = n_outputs
        # One schedule object for the whole run, so that partial_fit calls continue it.
        self._schedule = build_callbacks([] if self.schedule is None
                                         else [(self.schedule, dict(self.schedule_params or {}))])

    def _run(self, X, T, epochs: int, val, callbacks) -> None:
        """``epochs`` more epochs by the library's Trainer, continuing the records."""
        n = len(X)
        k = min(AUTO_BATCH, n) if isinstance(self.batch_size, str) else int(self.batch_size)
        trainer = Trainer(self.network_, self.optimizer_, mode=self.mode, batch_size=k, shuffle=self.shuffle,
                          seed=self._rng, eval_every=1, accuracy=self._task == "classification",
                          callbacks=callbacks, engine=self.engine)
        # One history and epoch count across fit / partial_fit calls.
        trainer.history, trainer.epoch = self.history_, self.n_iter_
        trainer.fit(X, T, epochs, val)
        self.n_iter_ = trainer.epoch
        self.loss_curve_ = [float(v) for v in self.history_.loss_running]
        if trainer.diverged:
            event = next(e for e in reversed(self.history_.events) if e["event"] == "divergence")
            warnings.warn(f"{type(self).__name__}: {event['detail']}", ConvergenceWarning, stacklevel=3)

    def _split(self, y, rng) -> tuple[np.ndarray, np.ndarray]:
        """Seeded split into (train, validation) indices; per class for a classifier, so
        every class keeps samples in both parts where it has at least two."""
        n = len(y)
        groups = ([np.flatnonzero(y == c) for c in self.classes_] if self._task == "classification"
                  else [np.arange(n)])
        val = []
        for g in groups:
            m = int(round(len(g) * self.validation_fraction))
            m = min(m, len(g) - 1)  # leave each group a training sample
            val.append(rng.permutation(g)[:m])
        val = np.sort(np.concatenate(val)).astype(int)
        if len(val) == 0:
            raise ValueError(f"validation_fraction={self.validation_fraction} of {n} samples leaves no "
                             f"validation samples; use more data or a larger fraction")
        train = np.setdiff1d(np.arange(n), val)
        return train, val

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        if self.input_mean_ is not None:
            X = self._input_scaler.transform(X)
        return self._unscale(self.network_.predict(X))

    # ----------------------------------------------------------------- scaling
    def _fit_scaling(self, X, T) -> None:
        """Fit the input (and, for the regressor, target) standardisation on the data of fit
        or of the first partial_fit call; the fitted attributes are None when it is off."""
        self._input_scaler = Standardizer().fit(X) if self.standardize else None
        self.input_mean_ = None if self._input_scaler is None else self._input_scaler.mean.copy()
        self.input_scale_ = None if self._input_scaler is None else self._input_scaler.scale.copy()
        self._target_scaler = None
        if self._task == "regression" and self.standardize:
            self._target_scaler = Standardizer().fit(T)
        if self._task == "regression":
            self.target_mean_ = None if self._target_scaler is None else self._target_scaler.mean.copy()
            self.target_scale_ = None if self._target_scaler is None else self._target_scaler.scale.copy()

    def _scale(self, X, T):
        """Inputs and targets in the units the network trains on."""
        if self._input_scaler is not None:
            X = self._input_scaler.transform(X)
        if self._target_scaler is not None:
            T = self._target_scaler.transform(T)
        return X, T

    def _unscale(self, out) -> np.ndarray:
        """Network outputs -> the targets' units (the regressor's target scaling undone)."""
        tsc = getattr(self, "_target_scaler", None)
        if tsc is None:
            return out
        return (out * tsc.scale + tsc.mean).astype(out.dtype)

    # ----------------------------------------------------------------- pickling


class BackpropClassifier(ClassifierMixin, _BackpropBase):
    r"""Multilayer perceptron classifier trained by backpropagation (deltaprop).

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default (16,)
        Widths of the hidden layers; ``()`` gives logistic / softmax regression.
    activation : str, default "tanh"
        Hidden activation, a name in :data:`deltaprop.ACTIVATIONS`.
    output_activation, loss : str or None
        Default: softmax + ``cross_entropy`` (3+ classes), sigmoid + ``binary_cross_entropy``
        (2 classes). The outputs must lie in [0, 1].
    init : str, default "glorot_uniform"
        Weight initialisation (:mod:`deltaprop.initializers`).
    mode : "stochastic", "minibatch" or "batch", default "minibatch"
    batch_size : int or "auto", default "auto"
        k of mini-batch mode; ``"auto"`` is min(32, n_samples). A k above n_samples is used as
        n_samples (with the Trainer's warning).
    lr : float, default 0.1
        Learning rate :math:`\eta`.
    optimizer : str, default "sgd"
        A name in :data:`deltaprop.optimizers.OPTIMIZERS`, looked up at fit time.
    optimizer_params : dict or None
        Keyword arguments of that optimizer (e.g. ``{"momentum": 0.9}``); not ``lr`` nor
        ``seed``.
    schedule : str or None; schedule_params : dict or None
        A learning-rate schedule from ``deltaprop.schedules`` (looked up at fit time) and its
        keyword arguments; ``None`` keeps ``lr`` constant.
    max_iter : int, default 200
        Epochs of ``fit`` (fewer when early stopping ends the run).
    shuffle : bool, default True
        Reshuffle the samples every epoch (stochastic and mini-batch modes).
    early_stopping : bool, default False; validation_fraction : float, default 0.1;
    n_iter_no_change : int, default 10; tol : float, default 1e-4
        See :meth:`fit`. The monitored quantity is the validation *loss* (scikit-learn's MLP
        watches the validation accuracy instead); ``validation_scores_`` records the accuracy.
    dtype : "float64" or "float32"; engine : str, default "auto"
        Arithmetic precision and the engine that runs the updates (:mod:`deltaprop.engines`).
    standardize : bool, default True
        Standardise the inputs (and the regressor's targets) with the training data's
        statistics, as part of the model; see the module docstring. scikit-learn's MLP has no
        such parameter and uses inputs as given.
    random_state : None, int or numpy.random.Generator
        Seed of the one Generator behind weights, validation split and shuffling.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_, feature_names_in_ : as in scikit-learn
    network_ : deltaprop.network.Network
    optimizer_ : deltaprop.optimizers.Optimizer (its state continues across ``partial_fit``)
    n_iter_ : int
        Epochs run, over ``fit`` and the ``partial_fit`` calls that followed it.
    loss_curve_ : list of float
        Per epoch, the mean training batch loss before each update.
    history_ : deltaprop.training.History
        The library's full per-epoch record (validation loss, learning rate, updates, ...).
    validation_scores_ : list of float or None
        Accuracy on the held-out split after every epoch (``early_stopping=True`` only).
    best_validation_score_ : float or None
        That accuracy for the epoch whose weights are kept (the lowest validation loss).
    coefs_, intercepts_ : lists of arrays, ``coefs_[i]`` of shape (n_in, n_out)
    input_mean_, input_scale_ : ndarray of shape (n_features_in_,) or None
        The input standardisation (None with ``standardize=False``); the regressor also has
        ``target_mean_`` and ``target_scale_``, shape (n_outputs_,).
    """

    _task = "classification"

    def partial_fit(self, X, y, classes=None):
        """One epoch over ``X``, ``y``; the first call builds the network and needs ``classes``
        (all labels that will ever be seen, as in scikit-learn's convention)."""
        if classes is None and not hasattr(self, "network_"):
            # A batch may lack some classes, and the output layer's width depends on them.
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._partial_fit(X, y, classes)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(n, n_classes)``; rows sum to 1."""
        out = self._outputs(X)
        if out.shape[1] == 1:
            return np.hstack([1.0 - out, out])
        if self.network_.output_activation.name != "softmax":
            # Independent sigmoid units do not sum to 1: normalise them so they can be read
            # as a distribution over the classes (argmax is unchanged).
            out = out / np.maximum(out.sum(axis=1, keepdims=True), np.finfo(out.dtype).tiny)
        return out

    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))`` (``-inf`` where a probability is exactly 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable class per sample, shape ``(n,)``, with the labels of ``y``."""
        proba = self.predict_proba(X)  # first, so that an unfitted model says so
        return self.classes_[np.argmax(proba, axis=1)]

    def _validate(self, X, y, reset: bool):
        X, y = validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        return X, y

    def _targets(self, y, fitting: bool = False, classes=None) -> np.ndarray:
        """Encode labels: one 0/1 column for two classes (the second class is 1), one-hot
        columns for more; shape ``(n, 1)`` or ``(n, n_classes)``."""
        if fitting:
            cls = np.unique(y if classes is None else np.asarray(classes))
            if len(cls) < 2:
                raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; y has 1 class: "
                                 f"{cls[0]!r}")
            self.classes_ = cls
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if np.any(unknown):
            raise ValueError(f"y contains labels that are not in classes_ {self.classes_.tolist()}: "
                             f"{np.unique(np.asarray(y)[unknown]).tolist()[:10]}")
        if len(self.classes_) == 2:
            return codes.astype(float).reshape(-1, 1)
        return np.eye(len(self.classes_))[codes]

    def _check_classes(self, classes) -> None:
        if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {np.unique(classes).tolist()} differ from those of the first "
                             f"partial_fit call, {self.classes_.tolist()}")

    def _score_outputs(self, out, y) -> float:
        idx = (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)
        return float(accuracy_score(y, self.classes_[idx]))


class BackpropRegressor(RegressorMixin, _BackpropBase):
    r"""Multilayer perceptron regressor trained by backpropagation (deltaprop).

    The parameters are :class:`BackpropClassifier`'s; the default head is an identity output
    with the ``mse`` loss (per sample the mean over outputs of :math:`(t - o)^2`). ``y`` of
    shape ``(n,)`` gives predictions of shape ``(n,)``; ``(n, k)`` gives ``(n, k)``.
    ``validation_scores_`` holds the R^2 on the held-out split.
    """

    _task = "regression"

    def partial_fit(self, X, y):
        """One epoch over ``X``, ``y``; the first call builds the network."""
        return self._partial_fit(X, y)

    def predict(self, X) -> np.ndarray:
        """Predicted values, shape ``(n,)`` or ``(n, n_outputs)`` like the ``y`` of fit."""
        out = self._outputs(X)
        return out[:, 0] if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _validate(self, X, y, reset: bool):
        return validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32), multi_output=True,
                             y_numeric=True)

    def _targets(self, y, fitting: bool = False, classes=None) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if fitting:
            self._y_1d = y.ndim == 1
        T = y.reshape(len(y), -1)
        if hasattr(self, "n_outputs_") and not fitting and T.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {T.shape[1]} outputs but the network was built for {self.n_outputs_}")
        return T

    def _check_classes(self, classes) -> None:
        pass

    def _score_outputs(self, out, y) -> float:
        return float(r2_score(y, out[:, 0] if y.ndim == 1 else out))
