"""Pictures: each kind rendered to a real PNG, with what is drawn counted and checked."""

import json
import math
import sys

import numpy as np
import pytest

from deltaprop.cli import main
from deltaprop.data import Dataset, Standardizer
from deltaprop.errors import ConfigError, DataError, ModelFileError
from deltaprop.layers import Dense
from deltaprop.model import Model
from deltaprop.network import Network
from deltaprop.training import History


@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib")


def _png(path, min_w=300, min_h=200):
    """Read a PNG back; check its size and that something other than a blank page is in it."""
    from matplotlib.image import imread

    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    img = imread(str(path))
    h, w = img.shape[:2]
    assert min_w <= w <= 4000 and min_h <= h <= 4000, img.shape
    assert img[..., :3].std() > 0.05, "the picture is (nearly) blank"
    return img


def _xor_net(**dense) -> Network:
    """The textbook XOR solution: hidden OR and AND units, output OR-and-not-AND."""
    layers = [Dense(2, 2, "sigmoid", **dense), Dense(2, 1, "sigmoid", **dense)]
    net = Network.from_layers(layers, "half_sse")
    net.set_weights([(np.array([[20.0, 20.0], [20.0, 20.0]]), np.array([-10.0, -30.0])),
                     (np.array([[20.0], [-20.0]]), np.array([-10.0]))])
    return net


def _xor_model(**dense) -> Model:
    return Model(_xor_net(**dense), task="classification", classes=[0, 1], feature_names=["a", "b"],
                 target_names=["a_xor_b"])


def _xor_data() -> Dataset:
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    return Dataset(X, np.array([[0], [1], [1], [0]], float), "classification", "xor", ["a", "b"], ["a_xor_b"], [0, 1])


def _segments(ax):
    """Every edge drawn: (segment, colour, width, dashed) over the axes' line collections."""
    from matplotlib.collections import LineCollection

    out = []
    for coll in ax.collections:
        if isinstance(coll, LineCollection):
            colors, widths = coll.get_colors(), coll.get_linewidths()
            dashed = coll.get_linestyle()[0][1] is not None
            for i, seg in enumerate(coll.get_segments()):
                out.append((seg, colors[i % len(colors)], widths[i % len(widths)], dashed))
    return out


# --------------------------------------------------------------------------- history
def _history(n=40, thin=5) -> History:
    """A run evaluated every ``thin`` epochs (NaN between), with validation, accuracy and an event."""
    h = History()
    for e in range(1, n + 1):
        evaluated = e % thin == 0 or e == n
        h.append({"epoch": e, "loss": 1.0 / e if evaluated else math.nan, "loss_running": 1.1 / e,
                  "val_loss": 1.2 / e + 0.01 if evaluated else math.nan,
                  "accuracy": min(1.0, 0.5 + e / 50) if evaluated else math.nan,
                  "val_accuracy": min(1.0, 0.45 + e / 60) if evaluated else math.nan, "lr": 0.1})
    h.events.append({"epoch": 30, "event": "early_stopping", "detail": "no improvement"})
    return h


def test_plot_history_draws_every_series_without_nan_gaps(mpl, tmp_path):
    from deltaprop.plot import plot_history, save_figure

    fig = plot_history(_history(), title="a run")
    loss_ax, acc_ax = fig.axes
    lines = {ln.get_label().split(";")[0]: ln for ln in loss_ax.get_lines()}
    assert set(lines) == {"training loss (after the epoch)", "running loss (mean over the epoch)",
                          "validation loss", "early stopping (epoch 30)",
                          "lowest validation loss 0.04 (epoch 40)"}
    # Thinned columns: only the 9 evaluated epochs (5, 10, ..., 40) are plotted, as one line.
    x, y = lines["training loss (after the epoch)"].get_data()
    assert list(x) == [5, 10, 15, 20, 25, 30, 35, 40] and np.allclose(y, 1.0 / np.asarray(x))
    assert len(lines["running loss (mean over the epoch)"].get_xdata()) == 40
    assert list(lines["lowest validation loss 0.04 (epoch 40)"].get_xdata()) == [40]
    assert loss_ax.get_yscale() == "log"  # running loss 1.1 down to loss 0.025: more than a factor 30
    acc_labels = [ln.get_label() for ln in acc_ax.get_lines()]
    assert any(lab.startswith("training accuracy; last 100.0%") for lab in acc_labels)
    assert any(lab.startswith("validation accuracy") for lab in acc_labels)
    path = tmp_path / "h.png"
    save_figure(fig, path)
    img = _png(path, min_w=1000)
    assert img.shape[1] > img.shape[0]  # two panels side by side


def test_plot_history_log_scale_and_no_accuracy(mpl):
    from deltaprop.plot import plot_history

    h = History()
    for e in range(1, 201):
        h.append({"epoch": e, "loss": 0.5 * 0.97 ** e, "loss_running": 0.5 * 0.97 ** e})
    fig = plot_history(h)
    assert len(fig.axes) == 1  # no accuracy recorded: no empty second panel
    assert fig.axes[0].get_yscale() == "log"  # 0.5 down to 0.001: three decades
    h = History()
    for e in range(1, 11):
        h.append({"epoch": e, "loss": 1.0 / e})
    assert plot_history(h).axes[0].get_yscale() == "linear"  # a factor 10: a log axis would hide little


def test_plot_history_refuses_an_empty_history(mpl):
    from deltaprop.plot import plot_history

    with pytest.raises(ConfigError, match="empty"):
        plot_history(History())


def test_load_history_reads_nan_and_null(tmp_path):
    from deltaprop.plot import load_history

    path = tmp_path / "m.npz.history.json"
    path.write_text('{"epoch": [1, 2, 3], "loss": [NaN, 0.5, null], "loss_running": [1, 0.6, 0.4], '
                    '"events": [{"epoch": 3, "event": "divergence", "detail": "x"}]}')
    h = load_history(path)
    assert h.epoch == [1.0, 2.0, 3.0] and h.loss_running == [1.0, 0.6, 0.4]
    assert math.isnan(h.loss[0]) and h.loss[1] == 0.5 and math.isnan(h.loss[2])
    assert all(math.isnan(v) for v in h.val_loss)  # not recorded: NaN, the same length
    assert h.events[0]["event"] == "divergence"
    for text, message in (('{"epoch": [1, 2], "loss": [1]}', "not a list of 2"),
                          ('{"epoch": [1], "loss": ["a"]}', "not a number"),
                          ("[1, 2]", "not a training history"), ("{", "not a readable")):
        path.write_text(text)
        with pytest.raises(ModelFileError, match=message):
            load_history(path)
    with pytest.raises(ModelFileError, match="no such file"):
        load_history(tmp_path / "absent.json")


# --------------------------------------------------------------------------- network
def test_plot_network_edges_colours_widths_and_labels(mpl, tmp_path):
    from deltaprop.plot import NEGATIVE, POSITIVE, plot_network, save_figure
    from matplotlib.colors import to_rgba

    fig = plot_network(_xor_model())
    ax = fig.axes[0]
    edges = _segments(ax)
    assert len(edges) == 2 * 2 + 2 + 2 * 1 + 1  # weights and biases of both layers
    assert not any(dashed for *_, dashed in edges)
    # Colour is the sign: the weights are +20 (4 + 1), -20 (1) and the biases -10, -30, -10.
    colours = [tuple(np.round(c[:3], 3)) for _, c, _, _ in edges]
    assert colours.count(tuple(np.round(to_rgba(POSITIVE)[:3], 3))) == 5
    assert colours.count(tuple(np.round(to_rgba(NEGATIVE)[:3], 3))) == 4
    # Width is the magnitude: the -30 bias is the widest, the -10 biases the thinnest.
    widths = sorted(w for _, _, w, _ in edges)
    assert widths[-1] > widths[-2] and widths[0] == widths[1] < widths[2]
    # Units: 2 + 2 + 1, and a bias unit for each layer.
    units = [len(c.get_offsets()) for c in ax.collections if c.__class__.__name__ == "PathCollection"]
    assert units == [5, 2]
    texts = [t.get_text() for t in ax.texts]
    assert {"a", "b", "P(a_xor_b = 1)"} <= set(texts)
    assert texts.count("1") == 2  # the bias units
    assert sorted(t for t in texts if t.startswith(("-", "20"))) == sorted(
        ["20.00"] * 5 + ["-20.00", "-10.00", "-30.00", "-10.00"])  # 9 weight labels
    path = tmp_path / "net.png"
    save_figure(fig, path)
    _png(path)


def test_plot_network_frozen_and_absent_biases(mpl):
    from deltaprop.plot import plot_network

    frozen = _segments(plot_network(_xor_model(train_bias=False)).axes[0])
    assert sum(d for *_, d in frozen) == 3 and len(frozen) == 9
    fig = plot_network(_xor_model(bias=False))
    ax = fig.axes[0]
    assert len(_segments(ax)) == 6
    assert [len(c.get_offsets()) for c in ax.collections if c.__class__.__name__ == "PathCollection"] == [5]
    assert "1" not in [t.get_text() for t in ax.texts]


def test_plot_network_thins_large_layers_and_says_so(mpl, tmp_path):
    from deltaprop.plot import plot_network, save_figure, thinning_notes

    std = Standardizer(np.zeros(64), np.ones(64))
    net = Network([64, 30, 2], "tanh", seed=0)
    fig = plot_network(Model(net, standardizer=std), max_edges=300)
    ax = fig.axes[0]
    edges = _segments(ax)
    assert len(edges) == 300 + (30 * 2 + 2)  # layer 1 thinned from 64*30 + 30 = 1950; layer 2 whole
    # The 300 drawn in layer 1 are its largest |w| (edges starting in column 0).
    drawn = sorted(w for seg, _, w, _ in edges if seg[0][0] == 0)
    layer1 = np.concatenate([net.layers[0].W.ravel(), net.layers[0].b])
    assert len(drawn) == 300
    assert np.isclose(min(drawn), 0.3 + (1.6 - 0.3) * np.sort(np.abs(layer1))[-300] / np.abs(net.flat).max())
    assert "only the 300 largest in magnitude of its 1,950 weights and biases" in ax.get_xlabel()
    assert "standardised" in ax.get_xlabel()
    assert thinning_notes(net, 300) and not thinning_notes(net, 5000)
    path = tmp_path / "big.png"
    save_figure(fig, path)
    _png(path, min_h=1000)


def test_plot_network_refuses_layers_too_wide_to_read(mpl):
    from deltaprop.plot import plot_network

    with pytest.raises(ConfigError, match="input layer has 65 units, and at most 64"):
        plot_network(Network([65, 3, 2], seed=0))


# --------------------------------------------------------------------------- regions
def test_plot_regions_binary_shows_probability_boundary_and_points(mpl, tmp_path):
    from deltaprop.plot import plot_regions, save_figure

    fig = plot_regions(_xor_model(), _xor_data(), resolution=101)
    ax = fig.axes[0]
    (image,) = ax.images
    p = np.asarray(image.get_array())
    assert p.shape == (101, 101)
    # Bounds: the data's [0, 1] plus 10 % on each side, so pixel (i, j) is at -0.1 + 1.2 * j / 100.
    assert ax.get_xlim() == pytest.approx((-0.1, 1.1)) and ax.get_ylim() == pytest.approx((-0.1, 1.1))
    # At (0.5, 0.5), a + b = 1 lies between the OR unit's threshold 0.5 and the AND unit's 1.5:
    # OR on, AND off, so P = sigmoid(20 - 10) > 0.99. Rows are y, columns x.
    assert p[50, 50] > 0.99
    corner = round(0.1 / 1.2 * 100)  # the pixel at (0, 0)
    assert p[corner, corner] < 0.01 and p[corner, 100 - corner] > 0.99  # (0, 0) -> 0, (1, 0) -> 1
    assert p[100 - corner, 100 - corner] < 0.01  # (1, 1) -> 0
    assert len(ax.collections) >= 3  # the P = 0.5 contour and two classes of points
    labels = [h.get_label() for h in fig.legends[0].legend_handles]
    assert "a_xor_b = 0 (2 points)" in labels and "a_xor_b = 1 (2 points)" in labels
    assert not any("misclassified" in lab for lab in labels)
    path = tmp_path / "regions.png"
    save_figure(fig, path)
    _png(path)


def test_plot_regions_multiclass_rings_the_misclassified(mpl):
    from deltaprop.plot import plot_regions

    # Three classes by angle around the origin, from a 2-3 softmax layer with fixed weights.
    W = np.array([[1.0, -0.5, -0.5], [0.0, 0.866, -0.866]]) * 5
    net = Network.from_layers([Dense(2, 3, "softmax")], "cross_entropy")
    net.set_weights([(W, np.zeros(3))])
    model = Model(net, task="classification", classes=["r", "g", "b"], feature_names=["u", "v"],
                  target_names=["colour"])
    X = np.array([[1.0, 0.0], [-0.5, 0.8], [-0.5, -0.8], [1.0, 0.1]])
    T = np.eye(3)[[0, 1, 2, 1]]  # the last point is labelled g but lies in r's region
    fig = plot_regions(model, Dataset(X, T, "classification", "", ["u", "v"], ["colour"], ["r", "g", "b"]),
                       resolution=60)
    ax = fig.axes[0]
    rgb = np.asarray(ax.images[0].get_array())
    assert rgb.shape == (60, 60, 3)
    labels = [h.get_label() for h in fig.legends[0].legend_handles]
    assert labels.count("region: predicts r") == 1
    assert "misclassified (1 of 4)" in labels and "colour = g (2 points)" in labels


def test_plot_regions_regression_and_bounds_from_the_standardisation(mpl):
    from deltaprop.plot import plot_regions, regions_bounds

    net = Network([2, 1], "identity", seed=0)
    net.set_weights([(np.array([[1.0], [2.0]]), np.array([0.5]))])
    model = Model(net, target_names=["height"], feature_names=["u", "v"],
                  standardizer=Standardizer(np.array([10.0, -5.0]), np.array([2.0, 1.0])))
    bounds = regions_bounds(model)
    assert bounds == pytest.approx((10 - 6 - 1.2, 10 + 6 + 1.2, -5 - 3 - 0.6, -5 + 3 + 0.6))
    fig = plot_regions(model, resolution=40)
    ax = fig.axes[0]
    v = np.asarray(ax.images[0].get_array())
    # Raw units on the axes: the bottom-left pixel is (2.8, -8.6), standardised (-3.6, -3.6).
    assert v[0, 0] == pytest.approx(-3.6 + 2 * -3.6 + 0.5)
    assert ax.get_xlabel() == "u" and "height" in fig.axes[1].get_ylabel()  # the colour bar


def test_plot_regions_regression_shows_the_targets_own_units(mpl):
    """A model trained on standardised targets: the picture and its colour scale are in the
    targets' units (o * scale + mean), as predict gives them, not the network's scaled outputs."""
    from deltaprop.plot import plot_regions

    net = Network([2, 1], "identity", seed=0)
    net.set_weights([(np.array([[1.0], [2.0]]), np.array([0.5]))])
    model = Model(net, target_names=["price"], feature_names=["u", "v"],
                  target_scaler=Standardizer(np.array([1000.0]), np.array([300.0])))
    data = Dataset(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[1150.0], [2050.0]]), "regression")
    fig = plot_regions(model, data, bounds=(-1, 1, -1, 1), resolution=3)
    v = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(v, model.predict(np.column_stack([g.ravel() for g in np.meshgrid(
        np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))])).reshape(3, 3))
    assert v[0, 0] == pytest.approx((-1 - 2 + 0.5) * 300 + 1000)


def test_plot_regions_refuses_models_that_are_not_2d(mpl):
    from deltaprop.plot import plot_regions

    model = Model(Network([4, 3, 3], seed=0), feature_names=["sl", "sw", "pl", "pw"])
    with pytest.raises(ConfigError, match="only be drawn for a model with 2 inputs; this one takes 4"):
        plot_regions(model, bounds=(0, 1, 0, 1))
    with pytest.raises(DataError, match="3 feature columns"):
        plot_regions(_xor_model(), Dataset(np.zeros((2, 3)), np.zeros((2, 1)), "regression"))
    with pytest.raises(ConfigError, match="no saved standardisation"):
        plot_regions(_xor_model())
    with pytest.raises(ConfigError, match="xmin < xmax"):
        plot_regions(_xor_model(), bounds=(1, 0, 0, 1))


# --------------------------------------------------------------------------- files and extras
def test_save_figure_refuses_overwrite_and_unknown_formats(mpl, tmp_path):
    from deltaprop.plot import plot_network, save_figure

    fig = plot_network(_xor_model())
    path = tmp_path / "x.png"
    path.write_bytes(b"old")
    with pytest.raises(ModelFileError, match="already exists"):
        save_figure(fig, path)
    assert path.read_bytes() == b"old"
    save_figure(fig, path, overwrite=True)
    _png(path)
    with pytest.raises(ConfigError, match="cannot write a picture of type 'bmpx'"):
        save_figure(fig, tmp_path / "x.bmpx")
    save_figure(fig, tmp_path / "x.svg")
    assert (tmp_path / "x.svg").read_text().lstrip().startswith("<?xml")


def test_missing_matplotlib_is_a_config_error(monkeypatch):
    from deltaprop.plot import plot_history, plot_network, plot_regions

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" raise ImportError
    for call in (lambda: plot_history(_history()), lambda: plot_network(_xor_model()),
                 lambda: plot_regions(_xor_model(), _xor_data())):
        with pytest.raises(ConfigError, match=r"pip install deltaprop\[plot\]"):
            call()


# --------------------------------------------------------------------------- the command line
def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deltaprop: error: "), err
    return lines[0]


@pytest.fixture
def xor_file(tmp_path, capsys):
    path = tmp_path / "xor.npz"
    code, _, err = _run(capsys, "train", "--data", "xor", "--epochs", "30", "--engine", "numpy", "--out", path)
    assert code == 0, err
    return path


def test_cli_plot_all_three_kinds(mpl, tmp_path, capsys, xor_file):
    code, out, err = _run(capsys, "plot", "history", xor_file)
    assert code == 0, err
    assert out.splitlines()[0] == f"wrote {tmp_path / 'xor-history.png'}"
    _png(tmp_path / "xor-history.png")
    code, out, err = _run(capsys, "plot", "network", xor_file, "--out", tmp_path / "n.png", "--dpi", "60")
    assert code == 0, err
    small = _png(tmp_path / "n.png")
    assert small.shape[1] < 600  # --dpi reached the file
    code, out, err = _run(capsys, "plot", "regions", xor_file, "--data", "xor", "--resolution", "50")
    assert code == 0, err
    _png(tmp_path / "xor-regions.png")
    # Without --data: the range of the xor set the model file says it was trained on.
    code, out, err = _run(capsys, "plot", "regions", xor_file, "--out", tmp_path / "r2.png", "--resolution", "50")
    assert code == 0 and "range of the xor training data" in out, err
    code, out, err = _run(capsys, "plot", "regions", xor_file, "--range=-1,2,-1,2", "--out", tmp_path / "r3.svg",
                          "--resolution", "20")
    assert code == 0 and (tmp_path / "r3.svg").stat().st_size > 1000, err


def test_cli_plot_history_reads_the_file_train_wrote(mpl, tmp_path, capsys, xor_file):
    hist = json.loads((tmp_path / "xor.npz.history.json").read_text())
    assert len(hist["epoch"]) == 30
    from deltaprop.plot import history_path, load_history

    assert history_path(xor_file) == str(tmp_path / "xor.npz.history.json")
    assert load_history(history_path(xor_file)).loss_running == pytest.approx(hist["loss_running"])


def test_cli_plot_bad_inputs(mpl, tmp_path, capsys, xor_file):
    code, _, err = _run(capsys, "plot", "network", tmp_path / "missing.npz")
    assert code == 2 and "no such file" in _one_line_error(err)

    iris = tmp_path / "iris.npz"
    assert _run(capsys, "train", "--data", "iris", "--epochs", "1", "--engine", "numpy", "--out", iris)[0] == 0
    code, _, err = _run(capsys, "plot", "regions", iris, "--data", "iris")
    assert code == 2 and "2 inputs; this one takes 4" in _one_line_error(err)
    assert not (tmp_path / "iris-regions.png").exists()

    taken = tmp_path / "taken.png"
    taken.write_bytes(b"keep me")
    for kind in ("history", "network", "regions"):
        code, _, err = _run(capsys, "plot", kind, xor_file, "--out", taken)
        assert code == 2 and "already exists" in _one_line_error(err) and "--force" in err
        assert taken.read_bytes() == b"keep me"
    code, _, err = _run(capsys, "plot", "network", xor_file, "--out", taken, "--force")
    assert code == 0, err
    _png(taken)

    (tmp_path / "xor.npz.history.json").unlink()
    code, _, err = _run(capsys, "plot", "history", xor_file, "--out", tmp_path / "h.png")
    assert code == 2 and "history.json: no such file" in _one_line_error(err)

    code, _, err = _run(capsys, "plot", "network", xor_file, "--out", tmp_path / "n.bmpx")
    assert code == 2 and "cannot write a picture" in _one_line_error(err)

    no_std = tmp_path / "plain.npz"
    Model(_xor_net()).save(no_std)
    code, _, err = _run(capsys, "plot", "regions", no_std)
    assert code == 2 and "--range" in _one_line_error(err)


def test_cli_plot_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["plot", "pie", "m.npz"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["plot", "regions", "m.npz", "--range", "1,2,3"])
    assert exc.value.code == 2 and "four numbers" in capsys.readouterr().err
