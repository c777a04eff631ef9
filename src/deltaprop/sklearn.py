r"""scikit-learn estimators: :class:`BackpropClassifier` and :class:`BackpropRegressor`.

They follow the estimator contract (``get_params``/``set_params``/``clone``, input validation,
``n_features_in_``, ``feature_names_in_``, ``classes_``, pickling), so they work in
``Pipeline``, ``GridSearchCV`` and ``cross_val_score``; the test suite runs scikit-learn's own
``parametrize_with_checks`` on both. scikit-learn is an optional extra
(``pip install deltaprop[sklearn]``); ``import deltaprop`` never imports it.

Training is the library's: a :class:`~deltaprop.network.Network` trained by a
:class:`~deltaprop.training.Trainer` (the one training loop) with an optimizer from
:data:`deltaprop.optimizers.OPTIMIZERS`, an optional learning-rate schedule from
``deltaprop.schedules``, and scikit-learn's stopping rule as a callback.

Behaviour taken from scikit-learn's MLP, so that its code carries over:

* ``fit`` stops when the training loss has not fallen below its best by more than ``tol``
  for more than ``n_iter_no_change`` consecutive epochs, and warns (``ConvergenceWarning``)
  when ``max_iter`` epochs ran without that; with ``early_stopping=True`` the validation score
  (accuracy, :math:`R^2`) is watched instead and the best epoch's weights are kept
  (``best_validation_score_ == max(validation_scores_)``);
* ``sample_weight`` in ``fit``/``partial_fit`` makes each batch loss the weighted mean
  :math:`\sum_i w_i E_i / \sum_i w_i` (the library's
  :meth:`~deltaprop.network.Network.loss_and_gradient`), ``class_weight`` multiplies into it;
* a multilabel indicator ``y`` trains one sigmoid unit per label with binary cross-entropy;
  a CSR ``X`` is multiplied by scipy.sparse; float32 input trains and predicts in float32;
* weights that diverge raise scikit-learn's ``ValueError`` ("Solver produced non-finite
  parameter weights..."); with early stopping the diverged epoch scores NaN and the best
  epoch's weights are kept;
* ``partial_fit`` n times equals ``fit`` for n epochs (weights, optimizer state and sample
  order continue), and ``warm_start=True`` continues ``fit`` from the fitted weights;
* parameters are checked by scikit-learn's ``_parameter_constraints`` at fit time.

Conventions (the library's, see the README):

* the loss of a batch is the **mean** over its samples of the per-sample loss, so
  ``learning_rate_init`` means
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
``partial_fit`` call (weighted by ``sample_weight``), and kept by later ``partial_fit`` calls
and warm starts. A sparse ``X`` is divided by each column's spread but not centred.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import compute_sample_weight
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.sparsefuncs import mean_variance_axis
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .activations import ACTIVATIONS
from .config import DEFAULTS as _D
from .data.dataset import Standardizer
from .errors import ConfigError
from .layers import Dense
from .losses import LOSSES
from .model import Model, default_head
from .network import Network
from .optimizers import OPTIMIZERS, get_optimizer
from .techniques import build_callbacks
from .training import Callback, History, Trainer
from .validation import as_generator

__all__ = ["BackpropClassifier", "BackpropRegressor"]

#: The estimators' own defaults where they differ from the library's (deltaprop.config.DEFAULTS),
#: chosen by measuring held-out scores with defaults on raw data against scikit-learn's MLP
#: (bench/defaults_table.py; docs/defaults.md, 5 seeds, shared 2-core machine). From the
#: library's (16,) hidden units, k=32 and no decay:
#:
#: * ``batch_size`` 200 (scikit-learn's "auto" k, min(200, n)): 7 updates per epoch on 1,347
#:   digits rows instead of 43, so the 200 epochs cost a third (digits 1.8 s against 2.4 s) and
#:   SGD overfits the small regression tables less (diabetes R^2 0.36 against 0.11);
#: * ``hidden_layer_sizes`` (32,): digits 0.971 against 0.962 at k=200, the one table where
#:   16 units fell short of MLP's 0.969;
#: * ``weight_decay`` 3e-3 (L2 on the weights, not the biases): diabetes R^2 0.378 and digits
#:   0.978 (1e-3: 0.370 and 0.976; none: 0.331 and 0.971); the others within 0.003.
#:
#: scikit-learn's ``alpha`` adds :math:`\tfrac{\alpha}{2}\lVert W\rVert^2 / k` to the mean loss of a
#: batch of k rows, so the decay 3e-3 at k = 200 is ``alpha`` 0.6. The rest are scikit-learn's
#: defaults but where deltaprop measured better: ``solver`` "sgd" at ``learning_rate_init``
#: 0.1 without momentum (the library's; scikit-learn: adam at 0.001) and "tanh" units
#: (scikit-learn: relu), which raw, standardised columns train well with.
#: ``init`` "sklearn": scikit-learn's initial weights and biases (from ``RandomState(random_state)``
#: for an int, as MLP draws them), so that a drop-in starts where MLP starts; scikit-learn's
#: test_mlp.py depends on it (test_partial_fit_regression: R^2 0.620 from Glorot weights with
#: zero biases, 0.668 from MLP's, its threshold 0.65). On the defaults table it is within seed
#: noise of the Glorot start (digits mean 0.9727 both over seeds 0-9; diabetes 0.413 vs 0.419
#: over seeds 0-19, paired difference -0.006 +- 0.007).
#: ``learning_rate_init=None`` takes the solver's own rate (``SOLVER_LR``): 0.1 for sgd,
#: scikit-learn's 0.001 for adam (0.1 made adam stop after a few epochs at 0.905 on the
#: 20,000 x 100 table of bench/mlp_same_args.py, against MLP's 0.974), and each deltaprop
#: rule's default step.
ESTIMATOR_DEFAULTS = {"hidden_layer_sizes": (32,), "batch_size": 200, "alpha": 0.6, "solver": _D.optimizer,
                      "learning_rate_init": None, "momentum": 0.0, "activation": _D.activation, "init": "sklearn"}
SOLVER_LR = {"sgd": _D.lr, "adam": 0.001}

#: batch_size="auto" takes min(AUTO_BATCH, n_samples), scikit-learn's rule and number.
AUTO_BATCH = ESTIMATOR_DEFAULTS["batch_size"]

#: What scikit-learn's MLP raises for weights that are not finite (its message, so that code
#: matching it keeps working); deltaprop adds what happened.
NONFINITE = ("Solver produced non-finite parameter weights. The input data may contain large values and "
             "need to be preprocessed.")

#: scikit-learn's names of output activations (``out_activation_``), where they differ.
_SK_ACTIVATION = {"sigmoid": "logistic"}
#: scikit-learn's names accepted for deltaprop's activations and losses. scikit-learn's
#: "squared_error" is half the squared error averaged over the outputs: deltaprop's half_sse
#: for one output (for k outputs scikit-learn's is 1/k of it: a learning rate k times smaller).
_ACTIVATION_ALIASES = {"logistic": "sigmoid"}
_LOSS_ALIASES = {"squared_error": "half_sse", "log_loss": None}


#: Optimizer options that have an estimator parameter of their own (scikit-learn's name).
_NAMED_ELSEWHERE = {"lr": "give it as learning_rate_init", "seed": "all randomness comes from random_state",
                    "momentum": "give it as momentum", "nesterov": "give it as nesterovs_momentum",
                    "beta1": "give it as beta_1", "beta2": "give it as beta_2", "eps": "give it as epsilon",
                    "weight_decay": "give it as alpha (weight decay alpha / batch rows)"}


def _is_sparse(X) -> bool:
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def _standardizer(A, sample_weight) -> Standardizer:
    r"""The column statistics of ``A``; with weights :math:`w`, the weighted mean
    :math:`\mu = \sum_i w_i a_i / \sum_i w_i` and spread
    :math:`\sigma^2 = \sum_i w_i (a_i - \mu)^2 / \sum_i w_i` (a constant column: 1)."""
    if sample_weight is None or np.sum(sample_weight) <= 0:
        return Standardizer().fit(A)
    A = np.asarray(A, np.float64)
    mean = np.average(A, axis=0, weights=sample_weight)
    sd = np.sqrt(np.average((A - mean) ** 2, axis=0, weights=sample_weight))
    return Standardizer(mean, np.where(sd > 0, sd, 1.0))


def _incremental_solver(estimator) -> bool:
    """partial_fit exists for the epoch-wise solvers, not for lbfgs (as in scikit-learn)."""
    if estimator.solver == "lbfgs":
        raise AttributeError(f"partial_fit is only available for epoch-wise solvers, not {estimator.solver!r}")
    return True


class _Convergence(Callback):
    r"""scikit-learn's stopping rule, epoch by epoch (``MLPClassifier._update_no_improvement_count``).

    Without early stopping it watches the training loss :math:`L_e` (``loss_curve_``): an
    epoch with :math:`L_e > L_{best} - tol` counts as no improvement. With early stopping it
    watches the validation score :math:`S_e` (accuracy or :math:`R^2`): :math:`S_e < S_{best} +
    tol` counts, and the weights of the epoch with the highest :math:`S_e` are kept (the best
    epoch, whatever ``tol`` is). More than ``n_iter_no_change`` such epochs in a row stop the
    run. Runs after the schedule callbacks, on the epoch's own weights.
    """

    def __init__(self, estimator, val=None):
        self.est, self.val = estimator, val
        self.stopped = False

    def on_epoch_end(self, trainer, logs):
        est = self.est
        loss = float(logs["loss_running"])
        est.loss_curve_.append(loss)
        est.loss_ = loss
        est.t_ += est._n_train
        if self.val is None:
            if not loss > est.best_loss_ - est.tol:  # NaN counts as no improvement too
                est._no_improvement_count = 0
            else:
                est._no_improvement_count += 1
            if loss < est.best_loss_:
                est.best_loss_ = loss
        else:
            Xv, yv, wv = self.val
            score = est._score_outputs(est._unscale(trainer.network.predict(Xv)), yv, wv)
            est.validation_scores_.append(score)
            if score < est.best_validation_score_ + est.tol or not math.isfinite(score):
                est._no_improvement_count += 1
            else:
                est._no_improvement_count = 0
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                est._best_params = trainer.network.flat.copy()
        if est.verbose:
            print(f"Iteration {est.n_iter_ + trainer.epoch - est._epochs}, loss = {loss:.8f}")
            if self.val is not None:
                print(f"Validation score: {est.validation_scores_[-1]:f}")
        opt = trainer.optimizer
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            # scikit-learn's: eta = eta_0 / (t + 1)^power_t, t the samples seen so far
            opt.lr = float(est._learning_rate_init()) / (est.t_ + 1) ** float(est.power_t)
        if est._no_improvement_count > est.n_iter_no_change:
            what = "Validation score" if self.val is not None else "Training loss"
            if est.solver == "sgd" and est.learning_rate == "adaptive" and opt.lr > 1e-6:
                # scikit-learn's 'adaptive': divide eta by 5 instead of stopping, until below 1e-6
                opt.lr /= 5.0
                est._no_improvement_count = 0
                if est.verbose:
                    print(f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} "
                          f"consecutive epochs. Setting learning rate to {opt.lr:f}")
                return
            if est.verbose:
                print(f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} "
                      "consecutive epochs. Stopping.")
            self.stopped = True
            trainer.stop_training = True
            trainer.history.events.append({
                "epoch": logs["epoch"], "event": "converged",
                "detail": f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} "
                          f"consecutive epochs"})


class _BackpropBase(BaseEstimator):
    """Shared parameters, fitting and pickling; see the two public classes."""

    _task = ""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS) | {"logistic"}), list, tuple],
        "output_activation": [StrOptions(set(ACTIVATIONS)), None],
        "loss": [StrOptions(set(LOSSES) | {"squared_error", "poisson", "log_loss"}), dict, None],
        "init": [str],
        "mode": [StrOptions({"auto", "stochastic", "minibatch", "batch"})],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "solver": [str],  # a name looked up in OPTIMIZERS at fit time (the registry may grow)
        "alpha": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither"), None],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
        "optimizer_params": [dict, None],
        "schedule": [str, None],
        "schedule_params": [dict, None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "dtype": [StrOptions({"float32", "float64"}), None],
        "engine": [str],
        "standardize": ["boolean"],
        "random_state": ["random_state", np.random.Generator],
    }

    # ----------------------------------------------------------------- public API
    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        """The one fitting path of fit (``max_iter`` epochs) and partial_fit (one epoch)."""
        self._check_settings()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        fresh = not hasattr(self, "network_") or not (self.warm_start or incremental)
        X, y = self._validate(X, y, reset=fresh)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if fresh:
            T = self._targets(y, fitting=True, classes=classes)
            sample_weight = self._class_weighted(y, sample_weight)
            self._fit_scaling(X, T, sample_weight)
            self._start(X, T.shape[1])
        else:
            if incremental:
                self._check_classes(classes)
            else:
                self._check_warm_classes(y)
            T = self._targets(y)
            sample_weight = self._class_weighted(y, sample_weight)
        X, T = self._scale(X, T)
        self.n_iter_ = 0  # scikit-learn's MLP: the epochs of this call
        if self.solver == "lbfgs":
            return self._fit_lbfgs(X, T, sample_weight)
        val = None
        if self.early_stopping:
            train_idx, val_idx = self._split(y, self._rng)
            Xv, yv = X[val_idx], y[val_idx]
            wv = None if sample_weight is None else sample_weight[val_idx]
            val = (Xv, yv, wv)
            X, T = X[train_idx], T[train_idx]
            sample_weight = None if sample_weight is None else sample_weight[train_idx]
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
            self.best_loss_ = None
            self._best_params = None
        elif not incremental or not hasattr(self, "validation_scores_"):
            self.validation_scores_ = self.best_validation_score_ = None
        if not incremental:
            # a fit (warm or not) starts its own stopping count and optimizer
            self._no_improvement_count = 0
            if not self.early_stopping:
                self.best_loss_ = np.inf
            self.optimizer_ = self._make_optimizer(X.shape[0], sample_weight)
        self._n_train = X.shape[0]
        conv = _Convergence(self, val)
        epochs = 1 if incremental else int(self.max_iter)
        trainer = self._run(X, T, sample_weight, epochs, [*self._schedule, conv])
        if trainer.diverged:
            event = next(e for e in reversed(trainer.history.events) if e["event"] == "divergence")
            if val is None:
                raise ValueError(f"{NONFINITE} ({type(self).__name__}: {event['detail']})")
            # scikit-learn's MLP with early stopping: the diverged epoch scores NaN and the
            # best epoch's weights are kept
            self.validation_scores_.append(float("nan"))
            warnings.warn(f"{type(self).__name__}: {event['detail']}; the weights of the best validation "
                          "score were kept", ConvergenceWarning, stacklevel=3)
        if val is not None and self._best_params is not None:
            self.network_.flat[...] = self._best_params
        if not np.isfinite(self.network_.flat).all():
            raise ValueError(NONFINITE)
        if not incremental and not conv.stopped and not trainer.diverged and self.n_iter_ == self.max_iter:
            warnings.warn(f"{type(self).__name__}: Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                          "reached and the optimization hasn't converged yet.", ConvergenceWarning, stacklevel=3)
        return self

    def _fit_lbfgs(self, X, T, sample_weight):
        r"""``solver="lbfgs"``: the library's :class:`~deltaprop.optimizers.LBFGS` (scipy's
        L-BFGS-B on the whole training set's loss, weighted by ``sample_weight``, plus
        scikit-learn's L2 term :math:`\tfrac{\alpha}{2}\lVert W\rVert^2 / \sum_i w_i`, weights not
        biases), run by the Trainer in batch mode, one epoch per iteration, as
        ``deltaprop train --optimizer lbfgs`` runs it. ``max_iter`` bounds the iterations,
        ``max_fun`` the loss evaluations, and ``tol`` is L-BFGS-B's ``gtol``; scipy's reason is
        in the ConvergenceWarning when a bound ends the run, as in scikit-learn. ``loss_curve_``
        holds the objective (penalty included) after each iteration, ``loss_`` the last."""
        self.optimizer_ = opt = self._make_optimizer(X.shape[0], sample_weight)  # a fit starts a fresh one
        trainer = self._run(X, T, sample_weight, int(self.max_iter), [])
        self.loss_curve_ = list(opt.objective)
        if opt.objective:
            self.loss_ = opt.objective[-1]
        else:  # scipy stopped before a first iteration: the objective at the starting weights
            net = self.network_
            with np.errstate(over="ignore", invalid="ignore"):
                wt = net.params.astype(np.float64) * net.weight_mask()[:net.params.size]
                self.loss_ = float(net.evaluate(X, T, 4096, sample_weight)[0]) + 0.5 * opt.weight_decay * float(wt @ wt)
        self.t_ += X.shape[0] * self.n_iter_
        self.validation_scores_ = self.best_validation_score_ = None
        self.best_loss_ = None
        if trainer.diverged or not np.isfinite(self.network_.flat).all():
            raise ValueError(NONFINITE)
        if opt.status != 0:
            warnings.warn(f"{type(self).__name__}: lbfgs failed to converge after {self.n_iter_} iteration(s) "
                          f"(status={opt.status}): {opt.message}. Increase the number of iterations (max_iter) or "
                          "max_fun.", ConvergenceWarning, stacklevel=3)
        return self

    def _check_warm_classes(self, y) -> None:
        """scikit-learn's rule: a warm start keeps the classes of the previous fit."""
        if self._task != "classification" or self._multilabel:
            return
        if not np.array_equal(np.unique(y), self.classes_):
            raise ValueError("warm_start can only be used where `y` has the same classes as in the previous "
                             f"call to fit. Previously got {self.classes_}, `y` has {np.unique(y)}")

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

    @property
    def n_layers_(self) -> int:
        """Layers counted as scikit-learn does: input, hidden layers, output."""
        return len(self.network_.layers) + 1

    @property
    def out_activation_(self) -> str:
        """The output activation, by scikit-learn's name ('logistic', 'softmax', 'identity')."""
        name = self.network_.output_activation.name
        return _SK_ACTIVATION.get(name, name)

    # ----------------------------------------------------------------- fitting
    def _check_settings(self) -> None:
        """What scikit-learn's constraints (``_parameter_constraints``) cannot say."""
        self._activations()
        if self.solver not in OPTIMIZERS:
            raise ConfigError(f"unknown solver {self.solver!r}; valid: {', '.join(sorted(OPTIMIZERS))}")
        for key, why in _NAMED_ELSEWHERE.items():
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
            raise ValueError(f"hidden_layer_sizes must be a positive integer or a sequence of them, "
                             f"got {h!r}") from None
        return [int(s) for s in sizes]

    def _activations(self) -> list[str]:
        """One activation per hidden layer: ``activation`` repeated, or the list given."""
        n = len(self._hidden())
        act = self.activation
        if isinstance(act, str):
            return [_ACTIVATION_ALIASES.get(act, act)] * n
        acts = [_ACTIVATION_ALIASES.get(a, a) if isinstance(a, str) else a for a in act]
        if len(acts) != n or not all(isinstance(a, str) and a in ACTIVATIONS for a in acts):
            raise ValueError(f"activation must be a name in {sorted(ACTIVATIONS)} or a list of one per hidden "
                             f"layer ({n} for hidden_layer_sizes={self.hidden_layer_sizes!r}), got {act!r}")
        return acts

    def _dtype(self, X) -> np.dtype:
        """The arithmetic's dtype: ``dtype`` where given, else the input's (float32 stays float32)."""
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return np.dtype(np.float32) if X.dtype == np.float32 else np.dtype(np.float64)

    def _start(self, X, n_outputs: int) -> None:
        """Fresh network, generator and records (fit without warm_start, or a first partial_fit)."""
        rs = self.random_state
        init_rng = self._init_source(rs)
        if isinstance(rs, np.random.RandomState):  # scikit-learn's kind: draw our seed from it
            rs = int(rs.randint(np.iinfo(np.int32).max))
        self._rng = as_generator(rs, "random_state")
        if self.loss == "poisson":
            raise ConfigError("loss='poisson' is not available: deltaprop has no Poisson loss (losses: "
                              f"{', '.join(sorted(LOSSES))}, and scikit-learn's squared_error)")
        loss_name = _LOSS_ALIASES.get(self.loss, self.loss) if isinstance(self.loss, str) else self.loss
        out_act, loss = default_head(self._task, n_outputs, loss_name, self.output_activation)
        if self._task == "classification" and self._multilabel:
            out_act, loss = self.output_activation or "sigmoid", loss_name or "binary_cross_entropy"
        sizes = [X.shape[1], *self._hidden(), n_outputs]
        acts = [*self._activations(), out_act]
        dtype = self._dtype(X)
        layers = [Dense(a, b, act, dtype=dtype) for a, b, act in zip(sizes[:-1], sizes[1:], acts)]
        net = Network.from_layers(layers, loss, dtype)
        if self._task == "classification" and tuple(net.output_activation.output_range) != (0.0, 1.0):
            raise ConfigError(f"a classifier's outputs must lie in [0, 1] to be probabilities; output "
                              f"activation {net.output_activation.name!r} does not")
        net.reset_parameters(self._rng if init_rng is None else init_rng, self.init)
        self.network_ = net
        self.optimizer_ = self._make_optimizer(X.shape[0])
        self.history_ = History()
        self._epochs = 0  # over every fit and partial_fit call: the history's epoch count
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self.n_outputs_ = n_outputs
        self._no_improvement_count = 0
        self.best_loss_ = np.inf
        # One schedule object for the whole run, so that partial_fit calls continue it.
        self._schedule = build_callbacks([] if self.schedule is None
                                         else [(self.schedule, dict(self.schedule_params or {}))])

    def _init_source(self, random_state):
        """Where ``init="sklearn"`` draws the initial weights from: scikit-learn's own source
        for the same ``random_state`` (an int: ``numpy.random.RandomState(int)``; a RandomState:
        itself, before our seed is drawn from it), so that the network starts from the very
        weights and biases ``MLPClassifier(random_state=...)`` starts from; None (the
        estimator's Generator) otherwise, and for None or a Generator."""
        if self.init != "sklearn" or random_state is None or isinstance(random_state, np.random.Generator):
            return None
        if isinstance(random_state, np.random.RandomState):
            return random_state
        return np.random.RandomState(random_state)

    def _mode(self) -> str:
        """``mode="auto"``: batch for the rules that need the whole data set's gradient (RPROP,
        Quickprop), else mini-batch."""
        if self.mode != "auto":
            return self.mode
        return "batch" if self.solver in OPTIMIZERS and OPTIMIZERS[self.solver].batch_only else "minibatch"

    def _batch_rows(self, n: int) -> int:
        """Rows of a full update: what ``alpha`` is divided by (scikit-learn's batch size)."""
        mode = self._mode()
        if mode == "batch" or self.solver == "lbfgs":
            return n
        if mode == "stochastic":
            return 1
        return min(AUTO_BATCH, n) if isinstance(self.batch_size, str) else min(int(self.batch_size), n)

    def _make_optimizer(self, n: int, sample_weight=None):
        r"""The library's optimizer for ``solver``, with scikit-learn's parameters mapped:
        momentum / nesterovs_momentum (sgd), beta_1, beta_2, epsilon (adam), and ``alpha`` as
        the weight decay :math:`\lambda = \alpha / k` on the weights of the mean batch loss (k the
        rows of a full batch, times the mean sample weight: scikit-learn divides by each batch's
        sum of weights, which differs only for an epoch's last, smaller batch and, with sample
        weights, by how they fall into mini-batches; in batch mode it is exact)."""
        extra = dict(self.optimizer_params or {})
        mean_w = 1.0 if sample_weight is None or n == 0 else float(np.sum(sample_weight)) / n
        rows = self._batch_rows(n) * mean_w
        extra["weight_decay"] = float(self.alpha) / rows if rows > 0 else 0.0
        if self.solver == "lbfgs":
            return get_optimizer("lbfgs", max_fun=int(self.max_fun), tol=float(self.tol), **extra)
        if self.solver == "sgd":
            extra.update(momentum=float(self.momentum), nesterov=bool(self.nesterovs_momentum and self.momentum > 0))
        elif self.solver == "adam":
            extra.update(beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon)
        lr = self._learning_rate_init()
        return get_optimizer(self.solver, **({} if lr is None else {"lr": lr}), **extra)

    def _learning_rate_init(self):
        """``learning_rate_init``, or where it is None the solver's own (``SOLVER_LR``; None:
        the optimizer's default)."""
        return self.learning_rate_init if self.learning_rate_init is not None else SOLVER_LR.get(self.solver)

    def _run(self, X, T, sample_weight, epochs: int, callbacks) -> Trainer:
        """``epochs`` more epochs by the library's Trainer, continuing the records."""
        n = X.shape[0]
        k = min(AUTO_BATCH, n) if isinstance(self.batch_size, str) else int(self.batch_size)
        trainer = Trainer(self.network_, self.optimizer_, mode=self._mode(), batch_size=k, shuffle=self.shuffle,
                          seed=self._rng, eval_every=0, accuracy=False, callbacks=callbacks,
                          engine=self.engine)
        # One history and epoch count across fit / partial_fit calls.
        trainer.history, trainer.epoch = self.history_, self._epochs
        trainer.fit(X, T, epochs, None, sample_weight=sample_weight)
        self.n_iter_ += trainer.epoch - self._epochs
        self._epochs = trainer.epoch
        return trainer

    def _class_weighted(self, y, sample_weight):
        """``sample_weight`` times the weight of each sample's class (``class_weight``)."""
        cw = getattr(self, "class_weight", None)
        if cw is None:
            return sample_weight
        w = compute_sample_weight(cw, y)
        return w if sample_weight is None else w * sample_weight

    def _split(self, y, rng) -> tuple[np.ndarray, np.ndarray]:
        """Seeded split into (train, validation) indices by scikit-learn's train_test_split,
        stratified for a single-output classifier (its errors, e.g. a class of one sample);
        each part keeps the data's order."""
        n = y.shape[0]
        stratify = y if self._task == "classification" and not self._multilabel else None
        train, val = train_test_split(np.arange(n), test_size=self.validation_fraction, stratify=stratify,
                                      random_state=int(rng.integers(2**31 - 1)))
        if len(val) < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                             f"your dataset ({n} samples, validation_fraction={self.validation_fraction}).")
        return np.sort(train), np.sort(val)

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse="csr", dtype=(np.float64, np.float32))
        X, _ = self._scale(X, None)
        return self._unscale(self.network_.predict(X))

    # ----------------------------------------------------------------- scaling
    def _fit_scaling(self, X, T, sample_weight=None) -> None:
        """Fit the input (and, for the regressor, target) standardisation on the data of fit
        or of the first partial_fit call, weighted by ``sample_weight`` (so that integer weights
        equal repeated rows here too); the fitted attributes are None when it is off. A sparse
        X is only divided by each column's spread (centring would make it dense)."""
        if not self.standardize:
            self._input_scaler = None
        elif _is_sparse(X):
            _, var = mean_variance_axis(X.tocsr().astype(np.float64), axis=0, weights=sample_weight)
            sd = np.sqrt(var)
            self._input_scaler = Standardizer(np.zeros(X.shape[1]), np.where(sd > 0, sd, 1.0))
        else:
            self._input_scaler = _standardizer(X, sample_weight)
        self.input_mean_ = None if self._input_scaler is None else self._input_scaler.mean.copy()
        self.input_scale_ = None if self._input_scaler is None else self._input_scaler.scale.copy()
        self._target_scaler = None
        if self._task == "regression" and self.standardize:
            self._target_scaler = _standardizer(T, sample_weight)
        if self._task == "regression":
            self.target_mean_ = None if self._target_scaler is None else self._target_scaler.mean.copy()
            self.target_scale_ = None if self._target_scaler is None else self._target_scaler.scale.copy()

    def _scale(self, X, T):
        """Inputs and targets in the units the network trains on."""
        sc = self._input_scaler
        if sc is not None:
            if _is_sparse(X):
                X = X.tocsr().multiply((1.0 / sc.scale).astype(X.dtype)).tocsr()
            else:
                X = sc.transform(X)
        if self._target_scaler is not None and T is not None:
            T = self._target_scaler.transform(T)
        return X, T

    def _unscale(self, out) -> np.ndarray:
        """Network outputs -> the targets' units (the regressor's target scaling undone)."""
        tsc = getattr(self, "_target_scaler", None)
        if tsc is None:
            return out
        return (out * tsc.scale + tsc.mean).astype(out.dtype)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class BackpropClassifier(ClassifierMixin, _BackpropBase):
    r"""Multilayer perceptron classifier trained by backpropagation (deltaprop).

    Parameters
    ----------
    hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
    learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start,
    momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon,
    n_iter_no_change, max_fun
        scikit-learn's ``MLPClassifier`` parameters with its meanings; the table of them, with
        deltaprop's defaults (``ESTIMATOR_DEFAULTS``) and how each runs, is in
        docs/sklearn.md. ``activation`` may be a list, one per hidden layer; ``solver`` may
        also be a deltaprop rule (rprop-, rprop+, irprop-, irprop+, quickprop, sarprop).
    class_weight : dict, "balanced" or None
        Weights of the classes, multiplied into ``sample_weight`` (scikit-learn's
        ``compute_sample_weight``).
    loss : str or None
        None: the task's (softmax + cross-entropy for 3+ classes, sigmoid + binary
        cross-entropy for two and for multilabel y); a name in ``deltaprop.losses.LOSSES``.
    mode : "auto", "stochastic", "minibatch" or "batch", default "auto"
        auto: batch for RPROP and Quickprop, else mini-batch of ``batch_size``.
    output_activation : str or None
    init : str, default "sklearn"
        A name in ``deltaprop.initializers.INITIALIZERS``; "sklearn" is scikit-learn's MLP
        initialisation (weights and biases uniform in :math:`\pm\sqrt{6/(n_{in}+n_{out})}`,
        2 instead of 6 for logistic units), so a drop-in starts from the same distribution.
    optimizer_params : dict or None
        Other options of the solver (e.g. ``{"eta_plus": 1.1}``), not those named above.
    schedule : str or None; schedule_params : dict or None
        A learning-rate schedule from ``deltaprop.schedules`` and its keyword arguments.
    dtype : None, "float64" or "float32", default None
        None follows the input (float32 stays float32, anything else runs in float64).
    engine : str, default "auto"
        :mod:`deltaprop.engines`; sample weights and sparse input run on the NumPy engine.
    standardize : bool, default True
        Standardise the inputs (and the regressor's targets) with the training data's
        statistics, as part of the model; see the module docstring. scikit-learn's MLP has no
        such parameter and uses inputs as given.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_, feature_names_in_ : as in scikit-learn
    network_ : deltaprop.network.Network
    optimizer_ : deltaprop.optimizers.Optimizer (its state continues across ``partial_fit``)
    n_iter_ : int
        Epochs run by the last ``fit`` (or 1 after ``partial_fit``), as in scikit-learn.
    t_ : int
        Training samples seen over every update (scikit-learn's ``t_``).
    loss_curve_ : list of float; loss_ : float; best_loss_ : float or None
        Per epoch, the mean training batch loss before each update (weighted with sample
        weights); the last one; the lowest (None with early stopping).
    history_ : deltaprop.training.History
        The library's per-epoch record (learning rate, updates, events, ...).
    validation_scores_ : list of float or None
        Accuracy on the held-out split after every epoch (``early_stopping=True`` only).
    best_validation_score_ : float or None
        ``max(validation_scores_)``, the score of the epoch whose weights are kept.
    coefs_, intercepts_ : lists of arrays, ``coefs_[i]`` of shape (n_in, n_out)
    n_layers_, n_outputs_, out_activation_ : as in scikit-learn
    input_mean_, input_scale_ : ndarray of shape (n_features_in_,) or None
        The input standardisation (None with ``standardize=False``); the regressor also has
        ``target_mean_`` and ``target_scale_``, shape (n_outputs_,).
    """

    _task = "classification"
    _parameter_constraints = {**_BackpropBase._parameter_constraints,
                              "class_weight": [dict, StrOptions({"balanced"}), None]}

    def __init__(self, hidden_layer_sizes=ESTIMATOR_DEFAULTS["hidden_layer_sizes"],
                 activation=ESTIMATOR_DEFAULTS["activation"], *, solver=ESTIMATOR_DEFAULTS["solver"],
                 alpha=ESTIMATOR_DEFAULTS["alpha"], batch_size="auto", learning_rate="constant",
                 learning_rate_init=ESTIMATOR_DEFAULTS["learning_rate_init"], power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=ESTIMATOR_DEFAULTS["momentum"], nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, class_weight=None, loss=None, mode="auto", output_activation=None,
                 init=ESTIMATOR_DEFAULTS["init"], optimizer_params=None,
                 schedule=None, schedule_params=None, dtype=None, engine=_D.engine, standardize=True):
        # scikit-learn's rule: store the parameters unmodified; they are checked by fit.
        for name, value in list(locals().items()):
            if name != "self":
                setattr(self, name, value)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train on ``X`` (n, d; dense or CSR) and ``y`` (labels, or a multilabel indicator
        matrix) for at most ``max_iter`` epochs; ``sample_weight`` (n,) makes each batch loss a
        weighted mean (see :meth:`deltaprop.network.Network.loss_and_gradient`)."""
        return self._fit(X, y, sample_weight)

    @available_if(_incremental_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``X``, ``y``; the first call builds the network and needs ``classes``
        (all labels that will ever be seen, as in scikit-learn's convention). The optimizer's
        state and the generator continue, so n calls equal ``fit`` for n epochs."""
        if classes is None and not hasattr(self, "network_"):
            # A batch may lack some classes, and the output layer's width depends on them.
            raise ValueError("classes must be passed on the first call to partial_fit")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(n, n_classes)``; rows sum to 1 (for a multilabel
        model: each label's own probability)."""
        out = self._outputs(X)
        if self._multilabel:
            return out
        if len(self.classes_) == 1:
            return np.ones_like(out)
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
        """The most probable class per sample, shape ``(n,)``, with the labels of ``y``; for a
        multilabel model the indicator matrix (probability above 0.5)."""
        proba = self.predict_proba(X)  # first, so that an unfitted model says so
        if self._multilabel:
            return (proba > 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _validate(self, X, y, reset: bool):
        X, y = validate_data(self, X, y, reset=reset, accept_sparse="csr", dtype=(np.float64, np.float32),
                             multi_output=True)
        if y.ndim == 2 and type_of_target(y) != "multilabel-indicator":
            if y.shape[1] != 1:
                raise ValueError(f"y of shape {y.shape} is not a multilabel indicator matrix (0/1 columns); "
                                 "multiclass-multioutput targets are not supported")
            from sklearn.utils.validation import column_or_1d
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        return X, y

    def _targets(self, y, fitting: bool = False, classes=None) -> np.ndarray:
        """Encode labels: one 0/1 column for two classes (the second class is 1), one-hot
        columns for more, the 0/1 matrix itself for multilabel; shape ``(n, 1)`` or
        ``(n, n_classes)``."""
        if fitting:
            self._multilabel = y.ndim == 2
            if self._multilabel:
                self.classes_ = np.arange(y.shape[1])
                return y.astype(float)
            # one class is allowed, as in scikit-learn's MLP: it is then always predicted
            self.classes_ = np.unique(y if classes is None else np.asarray(classes))
        if self._multilabel:
            if y.ndim != 2 or y.shape[1] != len(self.classes_):
                raise ValueError(f"y has shape {y.shape}; the model was fitted on {len(self.classes_)} labels")
            return y.astype(float)
        codes = np.searchsorted(self.classes_, y)
        codes = np.clip(codes, 0, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if np.any(unknown):
            raise ValueError(f"y contains labels that are not in classes_ {self.classes_.tolist()}: "
                             f"{np.unique(np.asarray(y)[unknown]).tolist()[:10]}")
        if len(self.classes_) == 1:
            return np.ones((len(codes), 1))
        if len(self.classes_) == 2:
            return codes.astype(float).reshape(-1, 1)
        return np.eye(len(self.classes_))[codes]

    def _check_classes(self, classes) -> None:
        if classes is not None and not self._multilabel and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {np.unique(classes).tolist()} differ from those of the first "
                             f"partial_fit call, {self.classes_.tolist()}")

    def _score_outputs(self, out, y, sample_weight=None) -> float:
        if not np.isfinite(out).all():
            return float("nan")
        if self._multilabel:
            return float(accuracy_score(y, (out > 0.5).astype(int), sample_weight=sample_weight))
        if len(self.classes_) == 1:
            return float(accuracy_score(y, np.repeat(self.classes_, len(y)), sample_weight=sample_weight))
        idx = (out[:, 0] > 0.5).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)
        return float(accuracy_score(y, self.classes_[idx], sample_weight=sample_weight))


class BackpropRegressor(RegressorMixin, _BackpropBase):
    r"""Multilayer perceptron regressor trained by backpropagation (deltaprop).

    The parameters are :class:`BackpropClassifier`'s but ``class_weight``; the default head
    is an identity output with the ``mse`` loss (per sample the mean over outputs of
    :math:`(t - o)^2`). ``y`` of shape ``(n,)`` gives predictions of shape ``(n,)``;
    ``(n, k)`` gives ``(n, k)``. ``validation_scores_`` holds the :math:`R^2` on the held-out
    split.
    """

    _task = "regression"
    _multilabel = False

    def __init__(self, hidden_layer_sizes=ESTIMATOR_DEFAULTS["hidden_layer_sizes"],
                 activation=ESTIMATOR_DEFAULTS["activation"], *, solver=ESTIMATOR_DEFAULTS["solver"],
                 alpha=ESTIMATOR_DEFAULTS["alpha"], batch_size="auto", learning_rate="constant",
                 learning_rate_init=ESTIMATOR_DEFAULTS["learning_rate_init"], power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=ESTIMATOR_DEFAULTS["momentum"], nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, loss=None, mode="auto", output_activation=None,
                 init=ESTIMATOR_DEFAULTS["init"], optimizer_params=None,
                 schedule=None, schedule_params=None, dtype=None, engine=_D.engine, standardize=True):
        # scikit-learn's rule: store the parameters unmodified; they are checked by fit.
        for name, value in list(locals().items()):
            if name != "self":
                setattr(self, name, value)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train on ``X`` (n, d; dense or CSR) and ``y`` ((n,) or (n, k)) for at most
        ``max_iter`` epochs; ``sample_weight`` (n,) makes each batch loss a weighted mean."""
        return self._fit(X, y, sample_weight)

    @available_if(_incremental_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X``, ``y``; the first call builds the network. n calls equal
        ``fit`` for n epochs."""
        return self._fit(X, y, sample_weight, incremental=True)

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
        return validate_data(self, X, y, reset=reset, accept_sparse="csr", dtype=(np.float64, np.float32),
                             multi_output=True, y_numeric=True)

    def _targets(self, y, fitting: bool = False, classes=None) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if fitting:
            self._y_1d = y.ndim == 1
        T = y.reshape(y.shape[0], -1)
        if hasattr(self, "n_outputs_") and not fitting and T.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {T.shape[1]} outputs but the network was built for {self.n_outputs_}")
        return T

    def _check_classes(self, classes) -> None:
        pass

    def _score_outputs(self, out, y, sample_weight=None) -> float:
        if not np.isfinite(out).all():
            return float("nan")
        return float(r2_score(y, out[:, 0] if y.ndim == 1 else out, sample_weight=sample_weight))
