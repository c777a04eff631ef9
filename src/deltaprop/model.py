"""A trained network together with what it needs to be used on raw data.

:class:`Model` bundles the :class:`~deltaprop.network.Network` with the input
standardisation fitted on the training split, the class labels and the feature names, so that
``predict`` takes the same raw columns that training did. :func:`fit_dataset` is the one
recipe the CLI (and the scikit-learn wrapper) use to go from a :class:`Dataset` to a model.
"""

from __future__ import annotations

import numpy as np

from .data.dataset import Dataset, Standardizer, decode_labels
from .errors import ConfigError, DataError, ModelFileError
from .i18n import gettext as _, ngettext
from .io import load_model, save_model
from .network import Network
from .config import DEFAULTS
from .techniques import build_callbacks
from .training import Trainer, accuracy, reports_accuracy
from .validation import as_float_array, as_generator, require_finite

__all__ = ["Model", "build_training", "default_head", "fit_dataset", "model_parts", "target_scaling", "scales_targets"]


def model_parts(model) -> tuple:
    """``(network, standardizer or None, info dict)`` from a :class:`Model` or a bare Network."""
    if isinstance(model, Model):
        return model.network, model.standardizer, model.info()
    if isinstance(model, Network):
        return model, None, {}
    raise ConfigError(_("expected a deltaprop Model or Network, got {kind}").format(kind=type(model).__name__))


def default_head(task: str, n_outputs: int, loss: str | None, output_activation: str | None):
    """Pick the output activation and loss that suit the task where the user gave none.

    Classification: softmax + cross_entropy for more than two classes, sigmoid +
    binary_cross_entropy for two. Regression: identity + mse. A squared-error loss on a
    classification task gets a sigmoid (two classes) or softmax output.
    """
    if task == "classification":
        multi = n_outputs > 1
        loss = loss or ("cross_entropy" if multi else "binary_cross_entropy")
        if output_activation is None:
            output_activation = "softmax" if multi and loss in ("cross_entropy", "half_sse", "mse") else "sigmoid"
    else:
        loss = loss or "mse"
        if output_activation is None:
            output_activation = "sigmoid" if loss in ("binary_cross_entropy", "cross_entropy") else "identity"
    return output_activation, loss


class Model:
    r"""A network plus its preprocessing and labels.

    ``categories`` maps each one-hot encoded CSV column to its categories as learned from the
    training file (see :func:`deltaprop.data.load_csv`); pass it back to the loader so new data
    is encoded the same way.

    ``target_scaler`` (regression): the network was trained on standardised targets
    :math:`(t - \mu_t)/\sigma_t`; :meth:`predict` and :meth:`predict_outputs` return
    :math:`o\,\sigma_t + \mu_t`, in the targets' own units, and :meth:`evaluate` reports the
    loss in those units too. Model files of earlier releases have none (predictions unchanged).
    """

    def __init__(self, network: Network, *, task: str = "regression", classes=None,
                 feature_names=None, target_names=None, standardizer: Standardizer | None = None,
                 categories: dict | None = None, target_scaler: Standardizer | None = None):
        self.network = network
        self.target_scaler = target_scaler
        self.categories = dict(categories) if categories else None
        self.task = task
        self.classes = classes
        self.feature_names = list(feature_names or [])
        self.target_names = list(target_names or [])
        self.standardizer = standardizer

    def prepare(self, X) -> np.ndarray:
        """Raw feature columns -> the network's inputs (standardised). NaN/inf are caught where
        the inputs are used: ``Network.predict`` and :meth:`evaluate`."""
        X = as_float_array(X, _("inputs"))
        if X.ndim != 2 or X.shape[1] != self.network.n_inputs:
            n = self.network.n_inputs
            raise DataError(ngettext("data has shape {shape}, but the model takes {n} features ({names})",
                                     "data has shape {shape}, but the model takes {n} features ({names})", n).format(
                shape=X.shape, n=n,
                names=", ".join(self.feature_names[:8]) + (", ..." if len(self.feature_names) > 8 else "")))
        if self.standardizer is not None:
            X = self.standardizer.transform(X)
        return X

    def predict_outputs(self, X) -> np.ndarray:
        """Network outputs (probabilities for classification; values in the targets' units for
        regression, un-scaled by ``target_scaler``), shape ``(n, n_outputs)``."""
        return self.unscale(self.network.predict(self.prepare(X)))

    def unscale(self, out) -> np.ndarray:
        """Network outputs -> the targets' units (the identity without a ``target_scaler``)."""
        if self.target_scaler is None:
            return out
        return (out * self.target_scaler.scale + self.target_scaler.mean).astype(out.dtype)

    def predict(self, X) -> np.ndarray:
        """Class labels for classification, values for regression."""
        out = self.predict_outputs(X)
        return decode_labels(out, self.classes) if self.task == "classification" else out

    def evaluate(self, ds: Dataset, t_range=None, *, standardised_targets: bool = False) -> dict:
        """``{"samples", "loss"}`` (and ``"accuracy"`` for classes) on ``ds``. The loss is in
        the targets' own units, or with ``standardised_targets`` in the units the network
        trained in (the targets standardised by ``target_scaler``: what the epoch lines show).
        ``t_range``: see :func:`~deltaprop.training.accuracy`."""
        net = self.network
        X = net.check_input(self.prepare(ds.X))
        require_finite(X, _("inputs"))
        T = np.asarray(ds.T, dtype=net.dtype)
        if T.shape != (len(X), net.n_outputs):
            raise DataError(ngettext("targets have shape {shape}, the model gives {n} outputs",
                                     "targets have shape {shape}, the model gives {n} outputs", net.n_outputs).format(
                shape=T.shape, n=net.n_outputs))
        if standardised_targets and self.target_scaler is not None:
            T = self.target_scaler.transform(np.asarray(ds.T, float)).astype(net.dtype)
        if self.target_scaler is None or standardised_targets:
            loss, out = net.evaluate(X, T)
        else:
            # The loss in the targets' own units (what a user compares with other models), from
            # the un-scaled outputs; target scaling is only used with an identity output, so
            # the output is its own pre-activation.
            out = self.unscale(net.predict(X))
            loss = float(np.mean(net.loss.value(out, T, z=out, activation=net.output_activation)))
        res = {"samples": len(X), "loss": loss}
        if self.task == "classification":
            res["accuracy"] = accuracy(net, out, T, t_range)
        return res

    def align(self, ds: Dataset) -> Dataset:
        """Reorder ``ds``'s columns to the model's feature names (when both have names)."""
        if not self.feature_names or ds.feature_names == self.feature_names:
            return ds
        missing = [f for f in self.feature_names if f not in ds.feature_names]
        if missing:
            raise DataError(_("the data lacks the model's feature columns: {names}").format(names=", ".join(missing[:10])))
        idx = [ds.feature_names.index(f) for f in self.feature_names]
        return Dataset(ds.X[:, idx], ds.T, ds.task, ds.name, list(self.feature_names), ds.target_names,
                       ds.classes, categories=ds.categories)

    def info(self) -> dict:
        return {"task": self.task, "classes": self.classes, "feature_names": self.feature_names,
                "target_names": self.target_names,
                "standardizer": self.standardizer.to_dict() if self.standardizer else None,
                "categories": self.categories,
                "target_scaler": self.target_scaler.to_dict() if self.target_scaler else None}

    def save(self, path, *, overwrite: bool = False, extra: dict | None = None) -> None:
        save_model(path, self.network, info=self.info() | (extra or {}), overwrite=overwrite)

    @classmethod
    def load(cls, path) -> "Model":
        net, info = load_model(path)
        try:
            std = info.get("standardizer")
            tsc = info.get("target_scaler")  # absent from files of earlier releases
            cats = info.get("categories")
            if cats is not None and not (isinstance(cats, dict) and all(
                    isinstance(v, list) and all(isinstance(c, str) for c in v) for v in cats.values())):
                raise ValueError(_("categories must map column names to lists of strings, got {value!r}").format(
                    value=cats))
            return cls(net, task=info.get("task", "regression"), classes=info.get("classes"),
                       feature_names=info.get("feature_names"), target_names=info.get("target_names"),
                       standardizer=Standardizer.from_dict(std) if std else None, categories=cats,
                       target_scaler=Standardizer.from_dict(tsc) if tsc else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(_("{path}: bad model info ({reason})").format(path=path, reason=exc)) from None


_D = DEFAULTS


def build_training(train: Dataset, *, hidden=_D.hidden, activation=_D.activation,
                   output_activation=_D.output_activation, loss=_D.loss, mode=_D.mode, batch_size=_D.batch_size,
                   lr=_D.lr, optimizer=_D.optimizer, seed=_D.seed, init=_D.init, dtype=_D.dtype,
                   standardize=_D.standardize, standardize_target=_D.standardize_target, validation: Dataset | None = None,
                   early_stopping: int | None = _D.early_stopping, eval_every=_D.eval_every, eval_rows=_D.eval_rows,
                   shuffle=_D.shuffle,
                   train_bias=True, callbacks=(), on_divergence=_D.on_divergence, engine=_D.engine):
    """Set up, without training, what :func:`fit_dataset` trains (defaults:
    :data:`deltaprop.config.DEFAULTS`; a whole record: :func:`deltaprop.runs.prepare_run`).

    Returns ``(model, trainer, (X, T), validation or None)`` with the inputs already
    standardised, and, with ``standardize_target``, regression targets too (see
    :func:`target_scaling`; the model un-scales its predictions). All randomness (initial weights, then shuffling) comes from one Generator
    seeded with ``seed`` (or ``seed`` itself when it is a Generator).
    """
    if len(train) == 0:
        raise DataError(_("the training data set is empty"))
    out_act, loss = default_head(train.task, train.n_outputs, loss, output_activation)
    rng = as_generator(seed)
    std = Standardizer().fit(train.X) if standardize else None
    Xtr = std.transform(train.X) if std else train.X
    sizes = [train.n_features, *[int(h) for h in hidden], train.n_outputs]
    net = Network(sizes, activation, out_act, loss, dtype=dtype, train_bias=train_bias, init=init)
    net.reset_parameters(rng, init)
    tsc = target_scaling(train, net) if standardize_target else None
    Ttr = tsc.transform(train.T) if tsc else train.T
    val = None
    if validation is not None and len(validation):
        val = (std.transform(validation.X) if std else validation.X,
               tsc.transform(validation.T) if tsc else validation.T)
    if early_stopping and val is None:
        raise ConfigError(_("early stopping watches the validation loss: give a validation split"))

    cbs = build_callbacks([("early_stopping", {"patience": early_stopping})] if early_stopping else [])
    trainer = Trainer(net, optimizer, lr=lr, mode=mode, batch_size=batch_size, shuffle=shuffle, seed=rng,
                      eval_every=eval_every, eval_rows=eval_rows, accuracy=reports_accuracy(net, train.task),
                      callbacks=[*cbs, *callbacks], on_divergence=on_divergence, engine=engine)
    model = Model(net, task=train.task, classes=train.classes, feature_names=train.feature_names,
                  target_names=train.target_names, standardizer=std, categories=train.categories,
                  target_scaler=tsc)
    return model, trainer, (Xtr, Ttr), val


def target_scaling(train: Dataset, net: Network) -> Standardizer | None:
    """The target standardisation for training ``net`` on ``train``, or None where it does not
    apply: only regression with an unbounded (identity-like) output is scaled. Raw targets of
    size 100 or 1e6 make the first updates of an identity output huge (the gradient grows with
    the target), which saturates tanh units or diverges; standardised, every target column
    has mean 0 and spread 1, and the defaults fit whatever the units. A bounded output (e.g.
    sigmoid for targets in [0, 1]) keeps the targets as they are: scaled, they would leave its
    range."""
    if not scales_targets(train.task, net):
        return None
    return Standardizer().fit(train.T)


def scales_targets(task: str, net: Network) -> bool:
    """Whether :func:`target_scaling` applies: regression with an unbounded output."""
    return task == "regression" and tuple(net.output_activation.output_range) == (-np.inf, np.inf)


def fit_dataset(train: Dataset, *, epochs=_D.epochs, **kwargs) -> tuple[Model, Trainer]:
    """Build a network for ``train`` and train it for ``epochs``; returns ``(model, trainer)``.

    Keyword arguments are those of :func:`build_training`.
    """
    model, trainer, (X, T), val = build_training(train, **kwargs)
    trainer.fit(X, T, epochs, val)
    return model, trainer
