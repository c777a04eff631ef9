"""deltaprop explain: Mazur's worked example to the published digits, the article's summary
figures (and where each comes from), trained biases, any saved model, and the CLI.

Tolerances. The article prints 9 decimals (or the digits given): a float64 computation is
exact to ~1e-16 there, so a value must lie within half a unit of the last printed digit of the
published number (``_digits``). Comparisons of two float64 computations of the same thing in a
different order use rtol 1e-12 after one step and 1e-9 after thousands (rounding differences are
carried along, but the iteration contracts: the error falls monotonically).
"""

import json
import math
import re

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.cli import main
from deltaprop.data.dataset import Standardizer
from deltaprop.errors import ConfigError, DataError
from deltaprop.explain import (MAX_PARAMS, MazurNames, explain, explain_model, explain_worked_example,
                               model_target, render, worked_example_network)
from deltaprop.model import Model

from conftest import worst

X0, T0 = np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])


def _digits(value: float, published: str) -> None:
    """``value`` rounds to ``published``: within half a unit of its last digit."""
    decimals = len(published.split(".")[1]) if "." in published and "e" not in published else None
    if decimals is None:  # e-notation: the mantissa's decimals
        mant, exp = published.split("e")
        half = 0.5 * 10.0 ** (int(exp) - len(mant.split(".")[1]))
    else:
        half = 0.5 * 10.0 ** -decimals
    assert abs(value - float(published)) <= half * (1 + 1e-9), f"ours {value!r} vs published {published}"


def _rows(trace) -> dict:
    """name -> value of every row of a trace (names are unique within one trace)."""
    out = {}
    for sec in trace["sections"]:
        for r in sec["rows"]:
            assert r["name"] not in out or out[r["name"]] == r["value"], r["name"]
            out[r["name"]] = r["value"]
    return out


@pytest.fixture(scope="module")
def example():
    return explain_worked_example()


@pytest.fixture(scope="module")
def runs():
    """The 10,000-update runs, shared by the tests (each takes about 0.4 s)."""
    return {
        ("simultaneous", "none"): explain_worked_example(steps=10000),
        ("output-first", "none"): explain_worked_example(steps=10000, update_order="output-first"),
        ("simultaneous", "shared"): explain_worked_example(steps=10000, train_biases="shared"),
        ("simultaneous", "per-neuron"): explain_worked_example(steps=10000, train_biases="per-neuron"),
    }


def _reference(steps, order="simultaneous", biases="none", lr=0.5):
    """Mazur's algorithm written out independently, in the article's layout (one row per
    destination unit: W1[h] = weights into h), with the article's formulas. Returns E_total
    after each update and the final outputs."""
    i, t = X0[0], T0[0]
    W1 = np.array([[0.15, 0.20], [0.25, 0.30]])   # w1 w2 into h1; w3 w4 into h2
    W2 = np.array([[0.40, 0.45], [0.50, 0.55]])   # w5 w6 into o1; w7 w8 into o2
    b1, b2 = np.array([0.35, 0.35]), np.array([0.60, 0.60])
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    errors = []
    for _ in range(steps):
        h = sig(W1 @ i + b1)
        o = sig(W2 @ h + b2)
        d_o = (o - t) * o * (1 - o)                      # dE/dout * dout/dnet
        gW2, gb2 = np.outer(d_o, h), d_o
        if biases == "shared":
            gb2 = np.full(2, d_o.sum())                  # one parameter: the sum of both units'
        if order == "output-first":
            W2 = W2 - lr * gW2
        d_h = (W2.T @ d_o) * h * (1 - h)                 # old W2, or the new one (output-first)
        gW1, gb1 = np.outer(d_h, i), d_h
        if biases == "shared":
            gb1 = np.full(2, d_h.sum())
        if order == "simultaneous":
            W2 = W2 - lr * gW2
        W1 = W1 - lr * gW1
        if biases != "none":
            b1, b2 = b1 - lr * gb1, b2 - lr * gb2
        o = sig(W2 @ sig(W1 @ i + b1) + b2)
        errors.append(0.5 * np.sum((t - o) ** 2))
    return errors, o


# --------------------------------------------------------------------------- the worked example
def test_worked_example_reproduces_the_article(example):
    v = _rows(example)
    published = {
        "out_h1": "0.593269992", "out_h2": "0.596884378", "out_o1": "0.751365070",
        "out_o2": "0.772928465", "E_total": "0.298371109", "dE_total/dw5": "0.082167041",
        "w5+": "0.358916480", "w6+": "0.408666186", "w7+": "0.511301270", "w8+": "0.561370121",
        "w1+": "0.149780716", "w2+": "0.199561432", "w3+": "0.249751144", "w4+": "0.299502287",
        "E_total after 1 update": "0.291027774",
        # the article's intermediate steps, too
        "net_h1": "0.3775", "net_o1": "1.105905967", "E_o1": "0.274811083", "E_o2": "0.023560026",
        "dE_total/dout_o1": "0.74136507", "dout_o1/dnet_o1": "0.186815602",
        "dE_total/dout_h1": "0.036350306", "dout_h1/dnet_h1": "0.241300709",
        "dE_total/dw1": "0.000438568",
    }
    for name, digits in published.items():
        _digits(v[name], digits)
    assert example["summary"]["E_total_after_first_update"] == v["E_total after 1 update"]


def test_text_shows_the_published_digits(example):
    text = render(example, "text")
    for s in ["0.593269992", "0.596884378", "0.751365070", "0.772928465", "0.298371109",
              "0.358916480", "0.408666186", "0.511301270", "0.561370121", "0.149780716",
              "0.199561432", "0.249751144", "0.299502287", "0.291027774", "0.0821670406"]:
        assert s in text, s
    # the chain rule of dE/dw5, factor by factor, in one line
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("dE_total/dw5"))
    assert "dE_total/dout_o1 * dout_o1/dnet_o1 * dnet_o1/dw5 = 0.74136507 * 0.186815602 * 0.593269992" in line


def test_error_after_10000_updates(runs):
    _digits(runs[("simultaneous", "none")]["summary"]["E_total_final"], "3.5102e-05")


def test_the_articles_summary_figures_and_where_they_come_from(runs):
    sim, of = runs[("simultaneous", "none")], runs[("output-first", "none")]
    # 0.291027924 after the first update: the output-first variant, not the article's own arithmetic.
    _digits(of["summary"]["E_total_after_first_update"], "0.291027924")
    assert abs(sim["summary"]["E_total_after_first_update"] - 0.291027924) > 1e-7
    # outputs 0.015912196 / 0.984065734 after 10,000: output-first again.
    _digits(of["summary"]["outputs_final"][0], "0.015912196")
    _digits(of["summary"]["outputs_final"][1], "0.984065734")
    assert abs(sim["summary"]["outputs_final"][0] - 0.015912196) > 1e-6
    # 0.0000351085 "after 10,000": the correct algorithm after 9,999 (an off-by-one count) ...
    _digits(explain_worked_example(steps=9999)["summary"]["E_total_final"], "0.0000351085")
    # ... and neither algorithm after 10,000.
    for run in (sim, of):
        assert abs(run["summary"]["E_total_final"] - 0.0000351085) > 5e-11


def test_the_variant_updates_w5_to_w8_first(runs):
    of = _rows(explain_worked_example(update_order="output-first"))
    sim = _rows(explain_worked_example())
    for w in ("w5+", "w6+", "w7+", "w8+"):    # the output layer is the same in both orders
        assert of[w] == sim[w]
    # the hidden sum goes through the updated weights: delta_o1 * w5+ + delta_o2 * w7+
    expected = sim["delta_o1"] * sim["w5+"] + sim["delta_o2"] * sim["w7+"]
    assert of["dE_total/dout_h1"] == pytest.approx(expected, rel=1e-15)
    _digits(of["w1+"], "0.149817639")


@pytest.mark.parametrize("order", ["simultaneous", "output-first"])
@pytest.mark.parametrize("biases", ["none", "shared", "per-neuron"])
def test_runs_match_an_independent_implementation(order, biases):
    steps = 300
    trace = explain_worked_example(steps=steps, update_order=order, train_biases=biases)
    errors, outs = _reference(steps, order, biases)
    for p in trace["progress"][1:]:
        assert p["E_total"] == pytest.approx(errors[p["update"] - 1], rel=1e-11), p["update"]
    np.testing.assert_allclose(trace["summary"]["outputs_final"], outs, rtol=1e-12)


def test_trained_biases(runs):
    # Regression values, each also equal to the independent implementation (checked at 10,000).
    expected = {
        "shared": ("0.285750887", "4.35532107e-06"),
        "per-neuron": ("0.280471447", "2.44756224e-06"),
    }
    for biases, (first, final) in expected.items():
        s = runs[("simultaneous", biases)]["summary"]
        _digits(s["E_total_after_first_update"], first)
        _digits(s["E_total_final"], final)
        ref_errors, _ = _reference(10000, biases=biases)
        assert s["E_total_final"] == pytest.approx(ref_errors[-1], rel=1e-9)
        assert s["E_total_after_first_update"] == pytest.approx(ref_errors[0], rel=1e-12)
    rows = _rows(explain_worked_example(train_biases="shared"))
    # one shared bias per layer: its gradient is the sum of the per-unit gradients
    assert rows["dE_total/db2"] == pytest.approx(rows["delta_o1"] + rows["delta_o2"], rel=1e-15)
    assert "b_o1+" not in rows and "b2+" in rows
    rows = _rows(explain_worked_example(train_biases="per-neuron"))
    assert {"b_h1+", "b_h2+", "b_o1+", "b_o2+"} <= set(rows)


def test_per_neuron_training_equals_the_training_loop():
    """The traced updates are deltaprop's own stochastic gradient descent, step for step."""
    for biases in ("none", "per-neuron"):
        trace = explain_worked_example(steps=2000, train_biases=biases)
        net = worked_example_network(biases)
        dp.train(net, X0, T0, mode="stochastic", epochs=2000, lr=0.5, eval_every=0, engine="numpy")
        e = float(net.sample_losses(X0, T0)[0])
        assert trace["summary"]["E_total_final"] == pytest.approx(e, rel=1e-12)


# --------------------------------------------------------------------------- any network
def _nets():
    """Networks over the registry of activations and losses, with their sample."""
    rng = np.random.default_rng(3)
    specs = [
        ([3, 4, 3, 2], "tanh", "softmax", "cross_entropy", [0, 1]),
        ([2, 3, 1], "relu", "sigmoid", "binary_cross_entropy", [1]),
        ([2, 3, 2], "leaky_relu", "identity", "mse", [0.3, -1.2]),
        ([2, 2, 2], "softplus", "softmax", "half_sse", [0.2, 0.8]),
        ([2, 3, 2], "sigmoid", "tanh", "half_sse", [0.5, -0.5]),
        ([3, 2, 2], "tanh", "sigmoid", "binary_cross_entropy", [1, 0]),
        ([2, 2, 3], "sigmoid", "softmax", "cross_entropy", [0.2, 0.3, 0.1]),  # targets not summing to 1
        ([2, 3, 2], "gelu", "gelu", "mse", [0.3, -0.1]),
    ]
    out = []
    for sizes, act, out_act, loss, target in specs:
        net = dp.Network(sizes, act, out_act, loss, seed=int(rng.integers(1000)), init="uniform:1")
        net.set_weights([(layer.W, rng.uniform(-0.5, 0.5, layer.n_out)) for layer in net.layers])
        out.append((net, rng.uniform(-1, 1, sizes[0]), np.array(target, float)))
    return out


@pytest.mark.parametrize("case", range(len(_nets())))
def test_trace_gradients_equal_network_backward(case):
    net, x, t = _nets()[case]
    trace = explain(net, x, t, lr=0.1)
    traced = {r["param"]: r["value"] for sec in trace["sections"] if sec["id"].startswith("backward")
              for r in sec["rows"] if r["kind"] == "gradient"}
    ref = net.copy()
    ref.forward(x.reshape(1, -1))
    ref.backward(t.reshape(1, -1))
    names = ref.param_names()
    assert set(traced) == set(names[: ref.n_trainable])
    ours = np.array([traced[n] for n in names[: ref.n_trainable]])
    np.testing.assert_allclose(ours, ref.grads, rtol=1e-12, atol=1e-15, err_msg=worst(ours, ref.grads))
    # and the updates are W - lr * dE/dW
    updates = {r["param"]: r["value"] for sec in trace["sections"] if sec["id"] == "update" for r in sec["rows"]}
    after = np.array([updates[n] for n in names[: ref.n_trainable]])
    np.testing.assert_allclose(after, net.params - 0.1 * ref.grads, rtol=1e-13, atol=1e-15)


def _evaluate(row) -> float:
    """The text formula of a row with its arguments' values put in, evaluated."""
    expr = re.sub(r"\$(\d+)", lambda m: f"({row['args'][int(m.group(1))]['value']!r})", row["formula"])
    expr = expr.replace("^", "**")
    return eval(expr, {"__builtins__": {}}, {"exp": math.exp, "ln": math.log, "tanh": math.tanh, "max": max})


@pytest.mark.parametrize("case", ["mazur", "mazur-of-shared", "mazur-per-neuron", *range(len(_nets()))])
def test_every_formula_shown_gives_the_value_beside_it(case):
    if case == "mazur":
        trace = explain_worked_example()
    elif case == "mazur-of-shared":
        trace = explain_worked_example(update_order="output-first", train_biases="shared")
    elif case == "mazur-per-neuron":
        trace = explain_worked_example(train_biases="per-neuron")
    else:
        net, x, t = _nets()[case]
        trace = explain(net, x, t, update_order="output-first" if case % 2 else "simultaneous")
    checked = 0
    values = _rows(trace)
    for sec in trace["sections"]:
        for r in sec["rows"]:
            for a in r["args"]:  # an argument that is itself a row has that row's value
                if a["name"] in values:
                    assert a["value"] == values[a["name"]], (r["name"], a["name"])
            if r["formula"]:
                assert _evaluate(r) == pytest.approx(r["value"], rel=1e-10, abs=1e-13), (r["name"], r["formula"])
                checked += 1
    assert checked >= 20


def test_fused_softmax_cross_entropy_shows_out_minus_target():
    net, x, t = _nets()[0]
    trace = explain(net, x, t)
    out = next(s for s in trace["sections"] if s["id"] == "backward-3")
    deltas = [r for r in out["rows"] if r["kind"] == "delta"]
    assert [r["formula"] for r in deltas] == ["$0 - $1", "$0 - $1"]
    assert all("fused" in r["note"] for r in deltas)
    assert not any(r["kind"] == "factor" for r in out["rows"])   # no dE/dout, dout/dnet pretended
    o = trace["sections"][1]["rows"]
    outs = [r["value"] for r in o if r["name"].startswith("out3")]
    assert [r["value"] for r in deltas] == pytest.approx(np.array(outs) - t, rel=1e-14)


def test_explain_leaves_the_network_alone_and_checks_its_settings():
    net = worked_example_network()
    before = net.flat.copy()
    explain(net, [0.05, 0.1], [0.01, 0.99], steps=5)
    np.testing.assert_array_equal(net.flat, before)
    with pytest.raises(ConfigError, match="update order"):
        explain(net, [0.05, 0.1], [0.01, 0.99], update_order="backwards")
    with pytest.raises(ConfigError, match="steps"):
        explain(net, [0.05, 0.1], [0.01, 0.99], steps=0)
    with pytest.raises(ConfigError, match="learning rate"):
        explain(net, [0.05, 0.1], [0.01, 0.99], lr=-1)
    with pytest.raises(DataError, match="3 values"):
        explain(net, [0.05, 0.1, 0.2], [0.01, 0.99])
    big = dp.Network([30, 20, 2], seed=0)   # 662 parameters
    with pytest.raises(ConfigError, match=f"at most {MAX_PARAMS}"):
        explain(big, np.zeros(30), [0, 1])
    with pytest.raises(ConfigError, match="shared biases need one value per layer"):
        odd = dp.Network([2, 2, 1], seed=0)
        odd.set_weights([(odd.layers[0].W, [0.1, 0.2]), (odd.layers[1].W, 0.0)])
        explain(odd, [0, 1], [1], train_biases="shared")


def test_mazur_names_follow_the_article():
    n = MazurNames()
    assert [n.weight(1, i, j)[0] for j in range(2) for i in range(2)] == ["w1", "w2", "w3", "w4"]
    assert [n.weight(2, i, j)[0] for j in range(2) for i in range(2)] == ["w5", "w6", "w7", "w8"]
    net = worked_example_network()
    assert net.layers[0].W[1, 0] == 0.20 and net.layers[1].W[0, 1] == 0.50   # w2, w7


# --------------------------------------------------------------------------- rendering
def _numbers_in(obj, pool):
    """Every number in a JSON document, including those written inside its strings."""
    if isinstance(obj, dict):
        for v in obj.values():
            _numbers_in(v, pool)
    elif isinstance(obj, list):
        for v in obj:
            _numbers_in(v, pool)
    elif isinstance(obj, str):
        pool.extend(float(m) for m in _NUM.findall(obj))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        pool.append(float(obj))
    return pool


_NUM = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _printed_precision(token: str) -> float:
    mant, _, exp = token.partition("e")
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    return 0.5 * 10.0 ** (-decimals + (int(exp) if exp else 0))


@pytest.mark.parametrize("which", ["example", "model"])
def test_json_carries_every_number_of_the_text(which, example, tmp_path):
    if which == "example":
        trace = example
    else:
        model, path = _iris_model(tmp_path)
        trace = explain_model(model, [5.1, 3.5, 1.4, 0.2], [1, 0, 0], steps=50, source=path)
    doc = json.loads(render(trace, "json"))
    assert doc == trace
    # Magnitudes: a minus sign in the text may belong to the formula, as in exp(-net_h1).
    pool = np.abs(np.array(sorted(set(_numbers_in(doc, [])))))
    text = render(trace, "text")
    tokens = _NUM.findall(text)
    assert len(tokens) > 200
    for tok in tokens:
        v, tol = abs(float(tok)), _printed_precision(tok) * (1 + 1e-9)
        assert np.any(np.abs(pool - v) <= tol), f"{tok} is printed but not in the JSON"
    # every value of every row is printed
    for sec in trace["sections"]:
        for r in sec["rows"]:
            assert r["name"] in text


def test_markdown_has_latex_formulas(example):
    md = render(example, "markdown")
    assert md.startswith("# deltaprop explain")
    assert r"| $\frac{\partial E_{total}}{\partial w_{5}}$ |" in md
    assert r"\frac{\partial net_{o1}}{\partial w_{5}} = 0.74136507 \cdot 0.186815602 \cdot 0.593269992$" in md
    table_rows = [ln for ln in md.splitlines() if ln.startswith("| $")]
    assert all(ln.count(" | ") == 2 for ln in table_rows)   # three cells: no stray pipes


# --------------------------------------------------------------------------- saved models
def _iris_model(tmp_path):
    net = dp.Network([4, 3, 3], "tanh", "softmax", "cross_entropy", seed=0)
    model = Model(net, task="classification", classes=["setosa", "versicolor", "virginica"],
                  feature_names=["sl", "sw", "pl", "pw"],
                  standardizer=Standardizer([5.8, 3.0, 3.7, 1.2], [0.8, 0.4, 1.7, 0.7]))
    path = tmp_path / "iris.npz"
    model.save(path, overwrite=True)
    return Model.load(path), str(path)


def test_model_is_explained_on_its_standardised_input(tmp_path):
    model, path = _iris_model(tmp_path)
    raw = [5.1, 3.5, 1.4, 0.2]
    trace = explain_model(model, raw, model_target(model, "setosa"), source=path)
    x = model.standardizer.transform(np.array([raw]))[0]
    rows = _rows(trace)
    assert [rows[f"x[{i}]"] for i in range(4)] == pytest.approx(x, rel=1e-15)
    assert trace["sections"][0]["id"] == "input" and trace["input"]["standardized"]
    assert any("standardised" in n for n in trace["notes"])
    net = model.network
    assert rows["E_total"] == pytest.approx(float(net.sample_losses(x[None], np.array([[1.0, 0, 0]]))[0]), rel=1e-14)
    assert "W1[0,1]" in rows and "dE_total/dW2[2,0]" in rows


def test_a_regression_model_is_explained_on_its_standardised_target(tmp_path):
    # trained on standardised targets, the network's output is in those units: the error is
    # taken against t' = (t - mean) / scale, never against the raw target
    net = dp.Network([2, 3, 1], "tanh", "identity", "mse", seed=0)
    model = Model(net, task="regression", feature_names=["a", "b"], target_names=["y"],
                  standardizer=Standardizer([1.0, 50.0], [2.0, 10.0]), target_scaler=Standardizer([500.0], [40.0]))
    path = tmp_path / "reg.npz"
    model.save(path, overwrite=True)
    model = Model.load(path)
    trace = explain_model(model, [1.5, 60.0], model_target(model, "505"), source=str(path))
    rows = _rows(trace)
    x = model.standardizer.transform(np.array([[1.5, 60.0]]))
    t = (505.0 - 500.0) / 40.0
    assert rows["t'[0]"] == pytest.approx(t, rel=1e-15) and trace["target"]["raw"] == [505.0]
    assert rows["E_total"] == pytest.approx(float(net.sample_losses(x, np.array([[t]]))[0]), rel=1e-12)
    assert [s["id"] for s in trace["sections"][:2]] == ["input", "target"]
    from deltaprop.explain.rendering import render_text

    text = render_text(trace)
    assert "target t[0] = 0.125 (raw 505)" in text and "trained on standardised targets" in text
    # the output read back in the targets' units is the model's prediction
    assert rows["out2[0]"] * 40.0 + 500.0 == pytest.approx(float(model.predict(np.array([[1.5, 60.0]]))[0, 0]),
                                                         rel=1e-6)


def test_model_targets_by_number_or_class_label(tmp_path):
    model, _ = _iris_model(tmp_path)
    assert model_target(model, "versicolor") == [0.0, 1.0, 0.0]
    assert model_target(model, "0,0,1") == [0.0, 0.0, 1.0]
    with pytest.raises(DataError, match="3 comma-separated numbers or one class label"):
        model_target(model, "rose")
    binary = Model(dp.Network([2, 2, 1], seed=0), task="classification", classes=["no", "yes"])
    assert model_target(binary, "yes") == [1.0] and model_target(binary, "0.3") == [0.3]


# --------------------------------------------------------------------------- the command line
def _cli(capsys, *argv):
    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_default_is_the_worked_example(capsys):
    code, out, err = _cli(capsys)
    assert code == 0 and err == ""
    assert out.startswith("deltaprop explain: Mazur's")
    for s in ("0.593269992", "0.298371109", "0.358916480", "0.291027774"):
        assert s in out


def test_cli_formats_and_steps(capsys):
    code, out, _ = _cli(capsys, "--format", "json", "--steps", "10000")
    assert code == 0
    doc = json.loads(out)
    _digits(doc["summary"]["E_total_final"], "3.5102e-05")
    assert [p["update"] for p in doc["progress"]][-3:] == [8000, 9000, 10000]
    code, out, _ = _cli(capsys, "--steps", "10000", "--update-order", "output-first")
    assert code == 0 and "0.0159121963" in out and "10000 updates" in out
    code, out, _ = _cli(capsys, "--format", "markdown", "--train-biases", "shared")
    assert code == 0 and out.startswith("# ") and "b_{2}^{+}" in out


def test_cli_model(capsys, tmp_path):
    _, path = _iris_model(tmp_path)
    code, out, err = _cli(capsys, "--model", path, "--input", "5.1,3.5,1.4,0.2", "--target", "setosa",
                          "--lr", "0.1")
    assert code == 0, err
    assert "Standardised input" in out and "learning rate eta = 0.1" in out and "fused" in out


@pytest.mark.parametrize("argv, message", [
    (["--input", "1,2"], "the input has 2 values, but the model takes 4"),
    (["--input", "1,2,3,4", "--target", "rose"], "one class label"),
    (["--input", "1,x,3,4"], "--input must be comma-separated numbers"),
    (["--steps", "0", "--input", "1,2,3,4"], "steps must be an integer from 1"),
    (["--input", "1,2,3,4", "--train-biases", "shared"], "shared biases need one value per layer"),
])
def test_cli_bad_model_inputs(capsys, tmp_path, argv, message):
    model, path = _iris_model(tmp_path)
    # give the model distinct biases, so that "shared" is impossible
    model.network.layers[0].b[...] = [0.1, 0.2, 0.3]
    model.save(path, overwrite=True)
    if "--target" not in argv:
        argv = [*argv, "--target", "1,0,0"]
    code, out, err = _cli(capsys, "--model", path, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("deltaprop: error: ") and message in err, err


def test_cli_refuses_missing_and_too_large_models(capsys, tmp_path):
    code, _, err = _cli(capsys, "--model", str(tmp_path / "nope.npz"), "--input", "1", "--target", "1")
    assert code == 2 and err.startswith("deltaprop: error: ") and "no such file" in err and err.count("\n") == 1
    big = tmp_path / "big.npz"
    Model(dp.Network([30, 20, 3], seed=0)).save(big)
    code, _, err = _cli(capsys, "--model", str(big), "--input", "1", "--target", "1")
    assert code == 2 and err.count("\n") == 1 and "683 parameters" in err and "at most 500" in err
    code, _, err = _cli(capsys, "--model", str(big))
    assert code == 2 and "--model needs --input" in err
