r"""Pictures of a model: its training history, its network with the weights, its decision regions.

Each ``plot_*`` function returns a :class:`matplotlib.figure.Figure` drawn on the Agg canvas
directly, without pyplot: no display is needed and no global state changes, so the functions
are safe in scripts, servers and tests. :func:`save_figure` writes one to a file (the format
follows the extension) and never replaces an existing file unless asked to.

* :func:`plot_history`: loss, running loss and validation loss per epoch (and accuracy, where
  recorded) from a :class:`~deltaprop.training.History`; :func:`load_history` reads the
  ``MODEL.history.json`` file that ``deltaprop train --out MODEL`` writes.
* :func:`plot_network`: the layers as columns of units, every weight an edge whose colour is
  its sign and whose width is its magnitude, biases as units holding the constant 1 (as R's
  ``neuralnet`` draws a network).
* :func:`plot_regions`: what a model with two inputs predicts over the plane, with data points
  on top.

matplotlib is an optional extra (``pip install deltaprop[plot]``), imported inside the
functions; without it they raise :class:`~deltaprop.errors.ConfigError`.
"""

from __future__ import annotations

import io
import json
import math
import os

import numpy as np

from .errors import ConfigError, DataError, ModelFileError
from .i18n import N_, gettext as _, ngettext
from .io import write_bytes_atomic
from .model import Model, model_parts
from .training import History

__all__ = ["MAX_UNITS", "MAX_EDGES", "LABEL_EDGES", "history_path", "load_history", "plot_history",
           "check_drawable", "thinning_notes", "plot_network", "regions_bounds", "plot_regions",
           "save_figure"]

#: Widest layer :func:`plot_network` draws: beyond it the units' labels no longer fit.
MAX_UNITS = 64
#: Edges (weights and biases) drawn per layer; beyond it only the largest in magnitude are.
MAX_EDGES = 300
#: Weight values are written on the edges when the whole drawing has at most this many.
LABEL_EDGES = 40

#: Edge colours: positive weights blue, negative red (the colours of the regions' RdBu map).
POSITIVE, NEGATIVE = "#2166ac", "#b2182b"


def _require_matplotlib() -> None:
    """Raise ConfigError, with the install command, when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ConfigError(_("pictures need matplotlib: pip install deltaprop[plot]")) from None


def _figure(width: float, height: float):
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# --------------------------------------------------------------------------- history
def history_path(model_path) -> str:
    """Where ``deltaprop train --out MODEL`` writes the history: ``MODEL.history.json``."""
    return os.fspath(model_path) + ".history.json"


def load_history(path) -> History:
    """Read a history JSON file (``History.to_dict()``; NaN or null where an epoch was not evaluated).

    Raises :class:`~deltaprop.errors.ModelFileError` for a missing or malformed file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(_("{file}: no such file (deltaprop train --out MODEL writes the history to "
                               "MODEL.history.json)").format(file=path))
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)  # Python's json reads NaN, which History.to_dict() writes for thinned epochs
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(_("{file}: not a readable history file ({reason})").format(file=path, reason=exc)) from None
    if not isinstance(d, dict) or not isinstance(d.get("epoch"), list):
        raise ModelFileError(_("{file}: not a training history (no list of epochs)").format(file=path))
    n = len(d["epoch"])
    clean = {}
    for key in History._COLUMNS:
        values = d.get(key)
        if values is None or values == []:
            values = [None] * n  # a column the writer did not record
        if not isinstance(values, list) or len(values) != n:
            raise ModelFileError(_("{file}: column {key!r} is not a list of {n} values").format(file=path, key=key, n=n))
        try:
            clean[key] = [math.nan if v is None else float(v) for v in values]
        except (TypeError, ValueError):
            raise ModelFileError(_("{file}: column {key!r} holds something that is not a number").format(
                file=path, key=key)) from None
    events = d.get("events", [])
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise ModelFileError(_("{file}: 'events' is not a list of records").format(file=path))
    clean["events"] = events
    return History.from_dict(clean)


def _series(ax, epochs, values, label, percent=False, **style):
    """Plot the finite entries of one column; return them (empty when nothing was recorded).

    Epochs that were not evaluated hold NaN: they are left out rather than breaking the line, so
    a loss evaluated every 10th epoch is still a line (with markers, to show where the points are).
    """
    y = np.asarray(values, float)
    ok = np.isfinite(y)
    if not ok.any():
        return y[ok]
    marker = "o" if ok.sum() <= 50 else None
    last = f"{y[ok][-1]:.1%}" if percent else f"{y[ok][-1]:.3g}"
    ax.plot(epochs[ok], y[ok], marker=marker, markersize=3, label=_("{label}; last {last}").format(
        label=_(label), last=last), **style)
    return y[ok]


_EVENT_STYLE = {"early_stopping": ("C2", N_("early stopping")), "divergence": ("C3", N_("diverged")),
                "lr_halved": ("C4", N_("learning rate halved"))}


def plot_history(history: History, *, title: str | None = None):
    """Loss curves per epoch (left) and accuracy (right, when recorded) of a training run.

    Three losses, as :class:`~deltaprop.training.History` names them: ``loss`` (the whole
    training set re-evaluated after the epoch's updates), ``loss_running`` (the mean of the
    batch losses seen during the epoch, what most libraries report) and ``val_loss``. The loss
    axis is logarithmic when the values span more than a factor of 30. Events (early stopping,
    divergence, learning-rate halving) are dotted vertical lines. Returns the Figure.
    """
    if len(history) == 0:
        raise ConfigError(_("the training history is empty: there is no epoch to plot"))
    epochs = np.asarray(history.epoch, float)
    has_acc = any(np.isfinite(np.asarray(v, float)).any() for v in (history.accuracy, history.val_accuracy))
    fig = _figure(11.5 if has_acc else 6.8, 4.4)
    axes = fig.subplots(1, 2 if has_acc else 1, squeeze=False)[0]
    ax = axes[0]
    shown = [_series(ax, epochs, history.loss, N_("training loss (after the epoch)"), color="C0"),
             _series(ax, epochs, history.loss_running, N_("running loss (mean over the epoch)"), color="C0",
                     linestyle="--", alpha=0.6),
             _series(ax, epochs, history.val_loss, N_("validation loss"), color="C1")]
    finite = np.concatenate(shown)
    if finite.size == 0:
        raise ConfigError(_("the history holds no finite loss value to plot"))
    val = np.asarray(history.val_loss, float)
    if np.isfinite(val).any():
        # The epoch early stopping goes back to (and, without it, the one worth knowing about).
        best = int(np.nanargmin(val))
        ax.plot([epochs[best]], [val[best]], marker="*", markersize=11, color="C1", markeredgecolor="black",
                linestyle="none", label=_("lowest validation loss {loss:.3g} (epoch {epoch:g})").format(
                    loss=val[best], epoch=epochs[best]))
    log = bool(np.all(finite > 0) and finite.max() / finite.min() > 30)
    ax.set(xlabel=_("epoch"), ylabel=_("loss (log scale)") if log else _("loss"), title=_("loss"))
    if log:
        ax.set_yscale("log")
    if has_acc:
        acc = axes[1]
        shown = [_series(acc, epochs, history.accuracy, N_("training accuracy"), percent=True, color="C0"),
                 _series(acc, epochs, history.val_accuracy, N_("validation accuracy"), percent=True, color="C1")]
        lowest = float(np.concatenate(shown).min())
        from matplotlib.ticker import PercentFormatter

        acc.yaxis.set_major_formatter(PercentFormatter(1.0))
        acc.set(xlabel=_("epoch"), ylabel=_("accuracy"), title=_("accuracy"), ylim=(max(0.0, lowest - 0.03), 1.01))
    seen = set()
    for ev in history.events:
        color, name = _EVENT_STYLE.get(ev.get("event"), ("0.4", str(ev.get("event"))))
        name = _(name) if ev.get("event") in _EVENT_STYLE else name
        try:
            epoch = float(ev.get("epoch"))
        except (TypeError, ValueError):
            continue
        for a in axes:
            # The legend names each kind of event once, at its first epoch.
            label = None
            if a is ax and name not in seen:
                restored = "restored" in str(ev.get("detail", ""))  # the detail is English in every file
                label = (_("{event} (epoch {epoch:g}); best weights restored") if restored else
                         _("{event} (epoch {epoch:g})")).format(event=name, epoch=epoch)
            a.axvline(epoch, color=color, linestyle=":", linewidth=1.5, label=label)
        seen.add(name)
    for a in axes:
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(title or _("training history"), fontsize=10, parse_math=False)
    return fig


# --------------------------------------------------------------------------- network
def _layer_name(index: int, n_layers: int) -> str:
    if index == 0:
        return _("input layer")
    return _("output layer") if index == n_layers else _("hidden layer {i}").format(i=index)


def check_drawable(network, max_units: int = MAX_UNITS) -> None:
    """Raise ConfigError when a layer is wider than ``max_units`` (its labels would not fit)."""
    sizes = network.sizes
    for i, n in enumerate(sizes):
        if n > max_units:
            raise ConfigError(_("the network {sizes} is too large to draw legibly: {layer} has {n} units, and at "
                                "most {most} per layer are drawn").format(
                sizes="-".join(map(str, sizes)), layer=_layer_name(i, len(sizes) - 1), n=n, most=max_units))


def _layer_edges(layer, max_edges: int):
    """Edges ``(source, target, weight)`` of one layer, source -1 for the bias; the ``max_edges``
    largest in magnitude when there are more. Returns (edges, total number)."""
    src, dst = np.meshgrid(np.arange(layer.n_in), np.arange(layer.n_out), indexing="ij")
    edges = [(src.ravel(), dst.ravel(), layer.W.ravel())]
    if layer.bias:
        edges.append((np.full(layer.n_out, -1), np.arange(layer.n_out), layer.b))
    src, dst, w = (np.concatenate(parts) for parts in zip(*edges))
    total = len(w)
    if total > max_edges:
        keep = np.sort(np.argsort(-np.abs(w), kind="stable")[:max_edges])
        src, dst, w = src[keep], dst[keep], w[keep]
    return list(zip(src.tolist(), dst.tolist(), w.astype(float).tolist())), total


def thinning_notes(network, max_edges: int = MAX_EDGES) -> list[str]:
    """One line per layer with more than ``max_edges`` weights and biases, saying what is drawn."""
    notes = []
    for i, layer in enumerate(network.layers, start=1):
        total = layer.n_in * layer.n_out + (layer.n_out if layer.bias else 0)
        if total > max_edges:
            notes.append(_("layer {i} ({below} → {above}): only the {most} largest in magnitude of its {total:,} "
                           "weights and biases are drawn").format(
                i=i, below=_layer_name(i - 1, len(network.layers)), above=_layer_name(i, len(network.layers)),
                most=max_edges, total=total))
    return notes


def _class_text(info, c) -> str:
    """``species = setosa`` where the model knows its target's name, else ``class setosa``."""
    targets = info.get("target_names") or []
    return f"{targets[0]} = {c}" if len(targets) == 1 else _("class {c}").format(c=c)


def _names(net, info) -> tuple[list[str], list[str]]:
    """Labels of the input and output units: feature names, class probabilities, target names."""
    inputs = list(info.get("feature_names") or [])
    if len(inputs) != net.n_inputs:
        inputs = [f"x{i + 1}" for i in range(net.n_inputs)]
    classes = info.get("classes")
    targets = list(info.get("target_names") or [])
    if info.get("task") == "classification" and classes:
        if net.n_outputs == 1 and len(classes) == 2:
            return inputs, [f"P({_class_text(info, classes[1])})"]
        if len(classes) == net.n_outputs:
            return inputs, [f"P({_class_text(info, c)})" for c in classes]
    if len(targets) != net.n_outputs:
        targets = [f"y{j + 1}" for j in range(net.n_outputs)]
    return inputs, targets


def _short(text: str, width: int = 26) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_network(model, *, max_units: int = MAX_UNITS, max_edges: int = MAX_EDGES,
                 weight_labels: bool | None = None, title: str | None = None):
    """Draw the network: units in columns, one edge per weight, biases as units holding 1.

    Edge colour is the weight's sign (blue positive, red negative), edge width its magnitude
    (relative to the largest drawn); biases that training held fixed are dashed. Inputs are
    labelled with the model's feature names, outputs with the class probabilities or target
    names. Layers wider than ``max_units`` are refused (ConfigError); in layers with more than
    ``max_edges`` weights and biases only the largest in magnitude are drawn, and the picture
    says so. ``weight_labels`` writes each value on its edge (default: when at most
    :data:`LABEL_EDGES` edges are drawn). Returns the Figure.
    """
    _require_matplotlib()
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    net, std, info = model_parts(model)
    check_drawable(net, max_units)
    if max_edges < 1:
        raise ConfigError(_("max_edges must be at least 1, got {value}").format(value=max_edges))
    sizes, n_layers = net.sizes, len(net.layers)
    tallest = max(sizes)
    dx = 3.0  # column spacing in data units; units within a column are 1 apart

    def unit_y(n, j):
        return (n - 1) / 2 - j

    bias_y = (tallest - 1) / 2 + 1.4  # one row above the tallest column
    layers = [_layer_edges(layer, max_edges) for layer in net.layers]
    drawn = [e for edges, _bias in layers for e in edges]
    wmax = max((abs(w) for _i, _j, w in drawn), default=0.0) or 1.0
    if weight_labels is None:
        weight_labels = len(drawn) <= LABEL_EDGES
    # Thinner, lighter lines when there are many, so that crossings stay readable.
    widest = 4.0 if len(drawn) <= LABEL_EDGES else 2.5 if len(drawn) <= 200 else 1.6
    alpha = 0.85 if len(drawn) <= 200 else 0.6

    height = max(3.6, 0.3 * tallest + 2.6)
    fig = _figure(max(6.0, 2.3 * (n_layers + 1) + 2.5), height)
    ax = fig.subplots()
    segments = {False: [], True: []}  # dashed (frozen bias) or not
    styles = {False: ([], []), True: ([], [])}
    for li, (layer, (edges, _bias)) in enumerate(zip(net.layers, layers)):
        x0, x1 = li * dx, (li + 1) * dx
        frozen = layer.bias and not layer.train_bias
        for s, t, w in edges:
            y0 = bias_y if s < 0 else unit_y(layer.n_in, s)
            y1 = unit_y(layer.n_out, t)
            dashed = s < 0 and frozen
            segments[dashed].append([(x0, y0), (x1, y1)])
            styles[dashed][0].append(POSITIVE if w >= 0 else NEGATIVE)
            styles[dashed][1].append(0.3 + (widest - 0.3) * abs(w) / wmax)
            if weight_labels:
                # Edges leaving one unit start together: stagger their labels along the edge by
                # target, so that each sits where its edge has moved apart from the others.
                f = 0.18 + 0.4 * (t + 0.5) / layer.n_out
                ax.text(x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, f"{w:.2f}", fontsize=8, ha="center",
                        va="center", color=POSITIVE if w >= 0 else NEGATIVE, zorder=4,
                        bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.85))
    for dashed in (False, True):
        if segments[dashed]:
            colors, widths = styles[dashed]
            ax.add_collection(LineCollection(segments[dashed], colors=colors, linewidths=widths,
                                             linestyles="--" if dashed else "-", alpha=alpha, zorder=1))

    # Units: marker size in points, so they stay round whatever the aspect.
    spacing_pt = height * 72 / (tallest + 3.5)
    size = min(24.0, 0.62 * spacing_pt) ** 2
    ux = np.concatenate([np.full(n, li * dx) for li, n in enumerate(sizes)])
    uy = np.concatenate([unit_y(n, np.arange(n)) for n in sizes])
    ax.scatter(ux, uy, s=size, facecolor="white", edgecolor="black", linewidth=1.2, zorder=3)
    bias_layers = [li for li, layer in enumerate(net.layers) if layer.bias]
    if bias_layers:
        ax.scatter(np.array(bias_layers) * dx, np.full(len(bias_layers), bias_y), s=size, facecolor="0.85",
                   edgecolor="black", linewidth=1.2, zorder=3)
        for li in bias_layers:
            ax.text(li * dx, bias_y, "1", ha="center", va="center", fontsize=8, zorder=4)

    inputs, outputs = _names(net, info)
    font = 8 if tallest <= 40 else 7 if tallest <= 56 else 6
    for j, name in enumerate(inputs):
        ax.text(-0.35, unit_y(sizes[0], j), _short(name), ha="right", va="center", fontsize=font)
    for j, name in enumerate(outputs):
        ax.text(n_layers * dx + 0.35, unit_y(sizes[-1], j), _short(name), ha="left", va="center", fontsize=font)
    for li, n in enumerate(sizes):
        if li == 0:
            head = _("inputs") + ("\n" + _("(standardised)") if std is not None else "")
        else:
            act = net.layers[li - 1].activation.name
            head = (_("output") if li == n_layers else _("hidden {i}").format(i=li)) + f"\n{act}"
        units = ngettext("{n} unit", "{n} units", n).format(n=n)
        ax.text(li * dx, bias_y + 1.0, f"{head}\n{units}", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(-2.6, n_layers * dx + 2.6)
    ax.set_ylim(-(tallest - 1) / 2 - 0.7, bias_y + 2.3)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)

    notes = [_("line width ∝ |weight|; the widest is {w:.3g}").format(w=wmax)]
    if std is not None:
        notes.append(_("inputs enter standardised: (x − training mean) / training sd"))
    notes += thinning_notes(net, max_edges)
    ax.set_xlabel("\n".join(notes), fontsize=8)
    handles = [Line2D([], [], color=POSITIVE, lw=2.5, label=_("positive weight")),
               Line2D([], [], color=NEGATIVE, lw=2.5, label=_("negative weight"))]
    if bias_layers:
        handles.append(Line2D([], [], marker="o", color="none", markerfacecolor="0.85", markeredgecolor="black",
                              markersize=9, label=_("bias unit (always 1)")))
    if segments[True]:
        handles.append(Line2D([], [], color="0.3", lw=1.5, linestyle="--", label=_("frozen bias (not trained)")))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title or _("network {sizes}").format(sizes="-".join(map(str, sizes))), fontsize=10,
                 parse_math=False)
    return fig


# --------------------------------------------------------------------------- regions
def regions_bounds(model, data=None, margin: float = 0.1) -> tuple[float, float, float, float]:
    """The plane to draw: the data's range plus ``margin`` of it on each side, else the training
    data's mean ± 3 standard deviations (from the saved standardisation).

    Raises ConfigError when neither is available (give the bounds explicitly).
    """
    net, std, _info = model_parts(model)
    if data is not None and len(data):
        lo, hi = np.min(data.X, axis=0), np.max(data.X, axis=0)
    elif std is not None:
        lo, hi = std.mean - 3 * std.scale, std.mean + 3 * std.scale
    else:
        raise ConfigError(_("the model has no saved standardisation to tell where its data lie: give data points "
                            "or the range to draw (--data or --range XMIN,XMAX,YMIN,YMAX)"))
    pad = np.where(hi > lo, (hi - lo) * margin, 1.0)
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def _predict(model, X) -> np.ndarray:
    """The outputs for raw inputs ``X``: a Model's standardisation applied and, for regression
    trained on standardised targets, its predictions in the targets' own units."""
    if isinstance(model, Model):
        return model.predict_outputs(X)
    return model.predict(X)


def _class_index(T: np.ndarray) -> np.ndarray:
    """Class index of one-hot (or single 0/1 column) targets, as decode_labels reads them."""
    return (T[:, 0] > 0.5).astype(int) if T.shape[1] == 1 else T.argmax(axis=1)


def plot_regions(model, data=None, *, bounds=None, resolution: int = 250, output: int = 0,
                 title: str | None = None):
    """What a model with two inputs predicts over the plane, with ``data``'s points on top.

    Parameters
    ----------
    model : Model or Network
        Must take exactly 2 inputs (ConfigError otherwise). A Model's standardisation is
        applied, so the axes are in the raw units of the features.
    data : Dataset, optional
        Points to overlay, coloured by their true class (classification) or target value;
        points the model gets wrong are ringed.
    bounds : (xmin, xmax, ymin, ymax), optional
        The plane drawn; default :func:`regions_bounds`.
    resolution : int
        Grid points per axis.
    output : int
        For regression with several outputs, which one is drawn.

    Classification with one (sigmoid) output shows P(second class) on a blue-red scale with the
    decision boundary P = 0.5 as a black line; with several outputs each region takes its
    class's colour, paler where the winning probability is lower. Regression shows the output
    value. Returns the Figure.
    """
    _require_matplotlib()
    import matplotlib
    from matplotlib.colors import Normalize, to_rgb
    from matplotlib.patches import Patch

    net, std, info = model_parts(model)
    names, _outputs = _names(net, info)
    if net.n_inputs != 2:
        raise ConfigError(_("decision regions can only be drawn for a model with 2 inputs; this one takes {n} "
                            "({names})").format(n=net.n_inputs,
                                                names=", ".join(names[:6]) + (", ..." if len(names) > 6 else "")))
    if not 2 <= int(resolution) <= 2000:
        raise ConfigError(_("resolution must be between 2 and 2000 grid points per axis, got {value}").format(
            value=resolution))
    if data is not None and data.X.shape[1] != 2:
        raise DataError(_("the data have {n} feature columns, the model takes 2").format(n=data.X.shape[1]))
    classes = info.get("classes") if info.get("task") == "classification" else None
    if not classes and not 0 <= output < net.n_outputs:
        raise ConfigError(_("output must be between 0 and {last}, got {value}").format(last=net.n_outputs - 1,
                                                                                      value=output))
    x0, x1, y0, y1 = bounds if bounds is not None else regions_bounds(model, data)
    if not all(math.isfinite(v) for v in (x0, x1, y0, y1)) or not (x0 < x1 and y0 < y1):
        raise ConfigError(_("the range to draw must be finite with xmin < xmax and ymin < ymax, got {value}").format(
            value=f"{x0:g},{x1:g},{y0:g},{y1:g}"))
    n = int(resolution)
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    XX, YY = np.meshgrid(xs, ys)
    out = _predict(model, np.column_stack([XX.ravel(), YY.ravel()])).astype(float)

    fig = _figure(7.6, 6.0)
    ax = fig.subplots()
    extent = (x0, x1, y0, y1)
    legend = []
    points = data is not None and len(data) > 0
    labelled = points and data.T.shape[1] > 0
    if classes:
        if net.n_outputs == 1:
            cmap = matplotlib.colormaps["RdBu_r"]
            p = out[:, 0].reshape(n, n)
            image = ax.imshow(p, extent=extent, origin="lower", aspect="auto", cmap=cmap, vmin=0, vmax=1,
                              alpha=0.6, interpolation="nearest")
            fig.colorbar(image, ax=ax, label=_("model's {what}").format(what=f"P({_class_text(info, classes[1])})"),
                         shrink=0.85)
            if p.min() < 0.5 < p.max():
                ax.contour(XX, YY, p, levels=[0.5], colors="black", linewidths=1.5)
                legend.append(ax.plot([], [], color="black", lw=1.5, label=_("decision boundary, P = 0.5"))[0])
            # The scale's darkest ends for the points, so they stand out against the paler regions.
            colors = [cmap(0.0), cmap(1.0)]
        else:
            palette = matplotlib.colormaps["tab10"]
            colors = [palette(i % 10) for i in range(net.n_outputs)]
            idx = out.argmax(axis=1)
            conf = out.max(axis=1)
            k = net.n_outputs
            # Paler where the winning class is less sure: 1/k (a tie) is palest, 1 is full colour.
            strength = 0.25 + 0.55 * np.clip((conf - 1 / k) / (1 - 1 / k), 0, 1)
            rgb = np.array([to_rgb(c) for c in colors])[idx]
            image = (1 - strength[:, None]) + strength[:, None] * rgb
            ax.imshow(image.reshape(n, n, 3), extent=extent, origin="lower", aspect="auto", interpolation="nearest")
            grid_idx = idx.reshape(n, n)
            for c in range(k):
                region = (grid_idx == c).astype(float)
                if 0 < region.mean() < 1:
                    ax.contour(XX, YY, region, levels=[0.5], colors="black", linewidths=0.8)
            legend += [Patch(facecolor=colors[c], alpha=0.6, label=_("region: predicts {c}").format(c=classes[c]))
                       for c in range(k)]
        if labelled:
            size = 22 if len(data) > 50 else 60  # a handful of points (xor) deserve to be seen
            true = _class_index(np.asarray(data.T, float))
            pred = _class_index(_predict(model, data.X))
            for c in range(len(colors)):
                sel = true == c
                if sel.any():
                    legend.append(ax.scatter(data.X[sel, 0], data.X[sel, 1], s=size, color=colors[c],
                                             edgecolor="black", linewidth=0.6, zorder=3,
                                             label=ngettext("{name} ({n} point)", "{name} ({n} points)",
                                                            int(sel.sum())).format(
                                                 name=_class_text(info, classes[c]), n=int(sel.sum()))))
            wrong = pred != true
            if wrong.any():
                legend.append(ax.scatter(data.X[wrong, 0], data.X[wrong, 1], s=3.5 * size, facecolor="none",
                                         edgecolor="black", linewidth=1.4, zorder=4,
                                         label=_("misclassified ({n} of {total})").format(
                                             n=int(wrong.sum()), total=len(true))))
    else:
        v = out[:, output].reshape(n, n)
        lo, hi = float(v.min()), float(v.max())
        if labelled:
            lo, hi = min(lo, float(data.T[:, output].min())), max(hi, float(data.T[:, output].max()))
        norm = Normalize(lo, hi if hi > lo else lo + 1)
        image = ax.imshow(v, extent=extent, origin="lower", aspect="auto", cmap="viridis", norm=norm,
                          interpolation="nearest")
        targets = list(info.get("target_names") or [])
        fig.colorbar(image, ax=ax, shrink=0.85,
                     label=_("model's {what}").format(what=targets[output] if output < len(targets) else
                                                      _("output {i}").format(i=output + 1)))
        if labelled:
            legend.append(ax.scatter(data.X[:, 0], data.X[:, 1], c=data.T[:, output], cmap="viridis", norm=norm,
                                     s=22, edgecolor="white", linewidth=0.7, zorder=3,
                                     label=_("data points ({n}) coloured by their target: the better the fit, "
                                             "the less they stand out").format(n=len(data))))
    if points and not labelled:
        legend.append(ax.scatter(data.X[:, 0], data.X[:, 1], s=18, color="0.2", zorder=3,
                                 label=_("data points ({n}, no targets)").format(n=len(data))))
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel=names[0], ylabel=names[1])
    spans = (x1 - x0, y1 - y0)
    if max(spans) / min(spans) < 1.5:  # a near-square plane: equal scales, so shapes are not distorted
        ax.set_aspect("equal", adjustable="box")
    if legend:
        fig.legend(handles=legend, fontsize=8, loc="outside lower center", ncol=2, frameon=False)
    ax.set_title(title or (_("decision regions") if classes else _("the model's output over the plane")), fontsize=10,
                 parse_math=False)
    return fig


# --------------------------------------------------------------------------- files
def save_figure(fig, path, *, overwrite: bool = False, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` (PNG, SVG, PDF, ... by the extension) atomically.

    Raises ModelFileError when ``path`` exists and ``overwrite`` is false, ConfigError for an
    extension matplotlib cannot write.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise ModelFileError(_("{file}: already exists; refusing to overwrite it (use --force)").format(file=path))
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    formats = fig.canvas.get_supported_filetypes()
    if ext not in formats:
        raise ConfigError(_("{file}: cannot write a picture of type {ext!r}; use one of {formats}").format(
            file=path, ext=ext, formats=", ".join("." + f for f in sorted(formats))))
    if not 10 <= int(dpi) <= 1200:
        raise ConfigError(_("dpi must be between 10 and 1200, got {value}").format(value=dpi))
    buf = io.BytesIO()
    # Rendered in memory first, so that a failure leaves no half-written file behind.
    fig.savefig(buf, format=ext, dpi=int(dpi))
    write_bytes_atomic(path, buf.getvalue(), overwrite=overwrite)
