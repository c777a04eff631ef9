"""deltaprop.sklearn as scikit-learn's MLP behaves (issues 15 and 19): stopping on the
training loss, ConvergenceWarning, early stopping that keeps the best epoch, sample and class
weights, warm_start, partial_fit == fit, per-layer activations, multilabel y, sparse X,
float32 kept, non-finite weights, strict parameters."""

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is the optional 'sklearn' extra")

import scipy.sparse as sp  # noqa: E402
from sklearn.datasets import load_diabetes, load_iris, make_classification, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.utils import compute_sample_weight  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_sample_weight_equivalence_on_dense_data, check_sample_weight_equivalence_on_sparse_data)

from deltaprop.network import Network  # noqa: E402
from deltaprop.sklearn import NONFINITE, BackpropClassifier, BackpropRegressor  # noqa: E402
from deltaprop.training import Trainer  # noqa: E402

# Short fits rarely converge; tests of the ConvergenceWarning use pytest.warns, which sees it
# whatever this filter says.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

NO_STOP = dict(n_iter_no_change=np.inf)  # every epoch runs: for comparisons of whole runs


def iris():
    return load_iris(return_X_y=True)


# --------------------------------------------------------------------------- stopping
def test_fit_stops_on_the_training_loss_by_scikit_learns_rule():
    X, y = iris()
    est = BackpropClassifier(tol=1e-3, n_iter_no_change=5, random_state=0).fit(X, y)  # no warning
    curve = np.array(est.loss_curve_)
    assert 6 <= est.n_iter_ < 200 and len(curve) == est.n_iter_
    # scikit-learn's rule replayed on the curve: the run ends at the first epoch where more
    # than n_iter_no_change epochs in a row were not below the best so far minus tol
    best, count, stop = np.inf, 0, None
    for epoch, loss in enumerate(curve, start=1):
        count = count + 1 if loss > best - 1e-3 else 0
        best = min(best, loss)
        if count > 5:
            stop = epoch
            break
    assert stop == est.n_iter_
    assert est.loss_ == curve[-1] and est.best_loss_ == curve.min()
    assert est.t_ == est.n_iter_ * len(X)
    assert any(e["event"] == "converged" and "Training loss did not improve" in e["detail"]
               for e in est.history_.events)


def test_max_iter_reached_warns_as_scikit_learn_does():
    X, y = iris()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached and the optimization "
                                                r"hasn't converged yet"):
        est = BackpropClassifier(max_iter=3, random_state=0).fit(X, y)
    assert est.n_iter_ == 3


def test_fitted_attributes_have_scikit_learns_names_and_meanings():
    X, y = iris()
    est = BackpropClassifier((5, 4), activation=["relu", "tanh"], max_iter=4, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert est.n_layers_ == 4 and est.n_outputs_ == 3 and est.out_activation_ == "softmax"
    assert [layer.activation.name for layer in est.network_.layers] == ["relu", "tanh", "softmax"]
    assert [c.shape for c in est.coefs_] == [(4, 5), (5, 4), (4, 3)]
    two = BackpropClassifier(max_iter=2, **NO_STOP, random_state=0).fit(X, y == 1)
    assert two.out_activation_ == "logistic" and two.n_outputs_ == 1
    reg = BackpropRegressor(max_iter=2, **NO_STOP, random_state=0).fit(X, y)
    assert reg.out_activation_ == "identity" and reg.validation_scores_ is None and reg.best_validation_score_ is None


# --------------------------------------------------------------------------- weights
def test_weighted_loss_and_gradient_equal_repeated_rows():
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    w = np.array([1, 0, 3, 2, 1, 1, 4])
    net = Network([3, 4, 2], "tanh", "identity", "mse", seed=0)
    loss_w, g_w = net.loss_and_gradient(X, T, chunk_size=3, sample_weight=w)
    g_w = g_w.copy()
    loss_r, g_r = net.loss_and_gradient(np.repeat(X, w, axis=0), np.repeat(T, w, axis=0))
    np.testing.assert_allclose(loss_w, loss_r, rtol=1e-13)
    np.testing.assert_allclose(g_w, g_r, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("optimizer", ["sgd", "irprop+", "quickprop"])
def test_trainer_with_integer_weights_equals_repeated_rows_in_batch_mode(optimizer):
    rng = np.random.default_rng(1)
    X, T = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    w = rng.integers(0, 4, size=20)
    runs = []
    for Xi, Ti, wi in ((X, T, w), (np.repeat(X, w, axis=0), np.repeat(T, w, axis=0), None)):
        net = Network([3, 5, 1], "tanh", "identity", "mse", seed=3)
        Trainer(net, optimizer, lr=0.05, mode="batch", seed=0, engine="numpy").fit(Xi, Ti, 15, sample_weight=wi)
        runs.append(net.flat.copy())
    # float64: the same sums in another order (1e-12 relative is many ulps of headroom)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-9, atol=1e-12)


def test_bad_sample_weights_are_refused_with_what_is_wrong():
    X, y = iris()
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(3,\), expected \(150,\)"):
        BackpropClassifier().fit(X, y, sample_weight=[1, 2, 3])
    with pytest.raises(ValueError, match=r"sample weights must be >= 0; row 0"):
        BackpropClassifier().fit(X, y, sample_weight=np.r_[-1.0, np.ones(149)])


@pytest.mark.parametrize("check", [check_sample_weight_equivalence_on_dense_data,
                                   check_sample_weight_equivalence_on_sparse_data])
@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_scikit_learns_sample_weight_equivalence_holds_in_batch_mode(Estimator, check):
    # weight 2 == a repeated row, weight 0 == a dropped row. In batch mode (no sample order)
    # this is exact; mini-batch modes form other batches from repeated rows, as in scikit-learn.
    check(Estimator.__name__, Estimator((8,), solver="irprop-", max_iter=60, random_state=0,
                                        **NO_STOP))


def test_lbfgs_weighted_equals_repeated_rows():
    rng = np.random.RandomState(0)
    X, y, w = rng.rand(15, 30), rng.rand(15), rng.randint(0, 5, 15)
    kw = dict(solver="lbfgs", max_iter=1000, tol=1e-12, random_state=0)
    a = BackpropRegressor((8,), **kw).fit(X, y, sample_weight=w)
    b = BackpropRegressor((8,), **kw).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    # the same objective: the same first iterates (float64 sums in another order) ...
    np.testing.assert_allclose(a.loss_curve_[:5], b.loss_curve_[:5], rtol=1e-12)
    # ... and the same path for 60 iterations, up to that rounding grown by each step (the
    # paths part by 1e-6 after 97-146 iterations, over 3 data seeds and 2 initialisations).
    # Where each then stops is no property of the objective: L-BFGS-B stops when one step lowers
    # the loss by less than 2.2e-9 (scipy's ftol; the loss is below 1), somewhere in a flat
    # valley, so the final losses differ by 6e-8 to 9e-3 over those six runs.
    np.testing.assert_allclose(a.loss_curve_[:60], b.loss_curve_[:60], rtol=1e-6)


def test_class_weight_is_a_sample_weight_per_class():
    X, y = iris()
    y = np.where(y == 2, 1, y)  # unbalanced: 50 of class 0, 100 of class 1
    kw = dict(solver="irprop-", max_iter=20, random_state=0, **NO_STOP)
    a = BackpropClassifier(class_weight="balanced", **kw).fit(X, y)
    b = BackpropClassifier(**kw).fit(X, y, sample_weight=compute_sample_weight("balanced", y))
    np.testing.assert_array_equal(a.network_.flat, b.network_.flat)
    c = BackpropClassifier(class_weight={0: 2, 1: 1}, **kw).fit(X, y)
    rep = np.where(y == 0, 2, 1)
    d = BackpropClassifier(**kw).fit(np.repeat(X, rep, axis=0), np.repeat(y, rep))
    np.testing.assert_allclose(c.network_.flat, d.network_.flat, rtol=1e-9, atol=1e-12)
    assert not np.allclose(a.network_.flat, BackpropClassifier(**kw).fit(X, y).network_.flat)


# --------------------------------------------------------------------------- continuing
@pytest.mark.parametrize("optimizer,params", [("sgd", {"momentum": 0.9, "nesterovs_momentum": True}), ("adam", {})])
@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_partial_fit_n_times_equals_fit_for_n_epochs_bitwise(Estimator, optimizer, params):
    X, y = iris()
    kw = dict(solver=optimizer, **params, learning_rate_init=0.01, engine="numpy", random_state=0, **NO_STOP)
    with pytest.warns(ConvergenceWarning):
        full = Estimator(max_iter=5, **kw).fit(X, y)
    part = Estimator(**kw)
    for _ in range(5):
        part.partial_fit(X, y, **({"classes": np.unique(y)} if Estimator is BackpropClassifier else {}))
    np.testing.assert_array_equal(full.network_.flat, part.network_.flat)
    for key, value in full.optimizer_.state.items():  # the optimizer's state too
        np.testing.assert_array_equal(value, part.optimizer_.state[key])
    assert full.optimizer_.t == part.optimizer_.t and full.loss_curve_ == part.loss_curve_
    assert part.t_ == full.t_ == 5 * len(X)


def test_partial_fit_refuses_early_stopping():
    X, y = iris()
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        BackpropClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_warm_start_continues_from_the_fitted_weights():
    X, y = iris()
    kw = dict(engine="numpy", random_state=0, **NO_STOP)  # plain SGD: no optimizer state to lose
    with pytest.warns(ConvergenceWarning):
        five = BackpropClassifier(max_iter=5, **kw).fit(X, y)
        warm = BackpropClassifier(max_iter=3, warm_start=True, **kw).fit(X, y)
        first = warm.network_.flat.copy()
        warm.set_params(max_iter=2).fit(X, y)
        cold = BackpropClassifier(max_iter=3, **kw).fit(X, y).set_params(max_iter=2).fit(X, y)
    np.testing.assert_array_equal(five.network_.flat, warm.network_.flat)
    assert warm.n_iter_ == 2 and len(warm.loss_curve_) == 5  # as scikit-learn: n_iter_ per fit
    np.testing.assert_array_equal(cold.network_.flat, BackpropClassifier(max_iter=2, **kw).fit(X, y).network_.flat)
    assert not np.array_equal(first, warm.network_.flat)


# --------------------------------------------------------------------------- inputs
def test_multilabel_indicator_y_gets_sigmoid_outputs_and_binary_cross_entropy():
    X, Y = make_multilabel_classification(n_samples=200, n_features=10, n_classes=4, random_state=0)
    est = BackpropClassifier((32,), batch_size=16, alpha=1e-5, max_iter=100, random_state=0, **NO_STOP)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, Y)
    assert est.out_activation_ == "logistic" and est.network_.loss.name == "binary_cross_entropy"
    assert est.predict(X).shape == Y.shape and set(np.unique(est.predict(X))) <= {0, 1}
    proba = est.predict_proba(X)
    assert proba.shape == Y.shape and not np.allclose(proba.sum(axis=1), 1)
    _, counts = np.unique(Y, axis=0, return_counts=True)
    assert counts.max() / len(Y) < 0.2  # predicting the most common row
    assert est.score(X, Y) > 0.5  # subset accuracy: every label of a row right


def test_sparse_x_trains_through_scipy_products_as_dense_does():
    X, y = make_classification(n_samples=120, n_features=30, random_state=0)
    X[np.abs(X) < 1.0] = 0.0  # two thirds zeros
    kw = dict(max_iter=10, random_state=0, engine="numpy", **NO_STOP)
    with pytest.warns(ConvergenceWarning):
        dense = BackpropClassifier(standardize=False, **kw).fit(X, y)
        sparse = BackpropClassifier(standardize=False, **kw).fit(sp.csr_matrix(X), y)
        scaled = BackpropRegressor(**kw).fit(sp.csr_matrix(X), y.astype(float))
    np.testing.assert_allclose(dense.network_.flat, sparse.network_.flat, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(dense.predict_proba(X), sparse.predict_proba(sp.csr_matrix(X)), rtol=1e-10)
    # standardised sparse input: divided by its spread, not centred (centring makes it dense)
    assert np.all(scaled.input_mean_ == 0) and np.allclose(scaled.input_scale_, X.std(axis=0))


@pytest.mark.parametrize("Estimator", [BackpropClassifier, BackpropRegressor])
def test_float32_input_stays_float32_end_to_end(Estimator):
    X, y = iris()
    X32 = X.astype(np.float32)
    with pytest.warns(ConvergenceWarning):
        est = Estimator(max_iter=3, random_state=0).fit(X32, y)
        est64 = Estimator(max_iter=3, random_state=0).fit(X, y)
    assert est.network_.dtype == np.float32 and all(c.dtype == np.float32 for c in est.coefs_)
    out = est.predict_proba(X32) if Estimator is BackpropClassifier else est.predict(X32)
    assert out.dtype == np.float32
    assert est64.network_.dtype == np.float64
    np.testing.assert_allclose(est.coefs_[0], est64.coefs_[0], rtol=1e-3, atol=1e-4)


def test_non_finite_weights_raise_scikit_learns_value_error():
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))
    y = rng.standard_normal(size=10)
    with pytest.raises(ValueError, match=NONFINITE.replace(".", r"\.")):
        BackpropRegressor(standardize=False, activation="relu").fit(X, y)  # relu passes 1e308 on
    # standardised (the default), the same data trains
    assert np.isfinite(BackpropRegressor(max_iter=5, random_state=0, **NO_STOP).fit(X, y).predict(X)).all()


def test_learning_rate_init_none_takes_the_solvers_own_rate():
    X, y = iris()
    kw = dict(max_iter=1, random_state=0)
    assert BackpropClassifier(solver="sgd", **kw).fit(X, y).optimizer_.lr == 0.1
    assert BackpropClassifier(solver="adam", **kw).fit(X, y).optimizer_.lr == 0.001  # scikit-learn's
    assert BackpropClassifier(solver="adam", learning_rate_init=0.02, **kw).fit(X, y).optimizer_.lr == 0.02
    from deltaprop.optimizers import OPTIMIZERS
    assert BackpropClassifier(solver="irprop-", **kw).fit(X, y).optimizer_.lr == OPTIMIZERS["irprop-"]().lr
