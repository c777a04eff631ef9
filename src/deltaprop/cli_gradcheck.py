r"""``deltaprop gradcheck``: backprop against finite differences, and what each costs.

Two uses:

* ``deltaprop gradcheck [--sizes 4,8,3 ... | --model FILE --data CSV]``: checks the
  backprop gradient of one network (random weights and data from ``--seed``, or a saved model
  on its data, standardised as in training) against central differences
  (:func:`deltaprop.gradcheck.gradcheck`). Exit code 0 when the maximum relative error is
  below ``--tol``, 1 when not, 2 for bad input.
* ``deltaprop gradcheck --cost-table``: times the backprop gradient against the numerical one
  for networks of about 10 to 100,000 parameters (:func:`deltaprop.gradcheck.gradient_cost`)
  and prints the rows as a text table. ``bench/cost_page.py`` writes the same measurement as
  the docs page docs/gradient-cost.md with its plot.

The library measures (:mod:`deltaprop.gradcheck`) and renders (:mod:`deltaprop.gradcheck_report`);
this module only reads the options.
"""

from __future__ import annotations

import json

import numpy as np

from .activations import ACTIVATIONS
from .cli import float_arg, int_arg
from .errors import ConfigError, DataError
from .gradcheck import DEFAULT_COST_SIZES, random_problem
from .gradcheck_report import CostTable, cost_table, run_check, sizes_name
from .losses import LOSSES
from .network import Network
from .i18n import gettext as _, ngettext

__all__ = ["register", "cmd", "cost_table_from_args"]

#: The architecture checked when neither --sizes nor --model is given.
CHECK_DEFAULTS = {"sizes": "4,8,3", "activation": "tanh", "output_activation": "softmax",
                  "loss": "cross_entropy", "init": "glorot_uniform", "samples": 16}
#: The options of CHECK_DEFAULTS that describe the cost table's networks too.
NETWORK_KEYS = ("activation", "output_activation", "loss", "init")
#: The cost table's settings where the user gives none.
TABLE_DEFAULTS = {"batch": 32, "repeats": 7, "budget": 3.0}


def register(subparsers) -> None:
    g = subparsers.add_parser(
        "gradcheck", help=_("check backprop against finite differences; --cost-table times both"),
        description=_("Compare the backprop gradient with central finite differences for a random network "
                    "(--sizes ...) or a saved model on its data (--model FILE --data CSV); exit code 0 when "
                    "the maximum relative error is below --tol, else 1. With --cost-table: time one "
                    "backprop gradient against the numerical gradient for networks of about 10 to 100,000 "
                    "parameters."))
    net = g.add_argument_group(_("the network (a random one unless --model is given)"))
    net.add_argument("--sizes", help=_("layer widths from input to output (default {value})").format(value=CHECK_DEFAULTS["sizes"]))
    acts, losses = ", ".join(sorted(ACTIVATIONS)), ", ".join(sorted(LOSSES))
    net.add_argument("--activation", help=_("hidden-layer activation: {names} (default {value})").format(names=acts, value=CHECK_DEFAULTS["activation"]))
    net.add_argument("--output-activation",
                     help=_("output activation (default {value})").format(value=CHECK_DEFAULTS["output_activation"]))
    net.add_argument("--loss", help=_("loss: {names} (default {value})").format(names=losses, value=CHECK_DEFAULTS["loss"]))
    net.add_argument("--init", help=_("weight initialisation (default {value})").format(value=CHECK_DEFAULTS["init"]))
    net.add_argument("--samples", type=int_arg, help=_("random samples (default 16); with --model: check on this many "
                                                  "rows drawn at random (default: all)"))
    net.add_argument("--seed", type=int_arg, default=0, help=_("seed of the weights, data and sampling (default 0)"))
    net.add_argument("--model", help=_("model file written by 'deltaprop train --out' (float32 models are "
                                     "checked in a float64 copy)"))
    net.add_argument("--data", help=_("with --model: CSV file or built-in set name with targets"))
    net.add_argument("--target", help=_("with --model: target column (default: the one the model was trained on)"))
    chk = g.add_argument_group(_("the check"))
    chk.add_argument("--max-params", type=int_arg, metavar="N",
                     help=_("check N parameters drawn at random instead of all (when a full sweep takes too long)"))
    chk.add_argument("--tol", type=float_arg, default=1e-6, help=_("pass when max relative error < TOL (default 1e-6)"))
    chk.add_argument("--order", type=int_arg, help=_("central differences of order 2 or 4 "
                                                "(default 4 for the check, 2 for --cost-table)"))
    chk.add_argument("--step", type=float_arg, default=2e-4, help=_("finite-difference step h (default 2e-4)"))
    cost = g.add_argument_group(_("the cost table"))
    cost.add_argument("--cost-table", action="store_true",
                      help=_("time backprop against numerical differentiation for networks of ~10 to ~100,000 parameters"))
    cost.add_argument("--table-sizes", metavar="SIZES;SIZES;...",
                      help=_("architectures of the table, e.g. '2,2,2;4,12,3' (default: {value})").format(
                          value=";".join(",".join(map(str, s)) for s in DEFAULT_COST_SIZES)))
    cost.add_argument("--batch", type=int_arg, help=_("samples in the timed batch (default 32)"))
    cost.add_argument("--repeats", type=int_arg, help=_("repeats whose median is reported (default 7)"))
    cost.add_argument("--budget", type=float_arg, metavar="SECONDS",
                      help=_("time the numerical gradient on a random sample of parameters when the full sweep "
                           "would take longer than this, per network (default 3)"))
    g.add_argument("--json", action="store_true", help=_("print the result as JSON"))
    g.set_defaults(func=cmd)


def _check_common(args) -> None:
    if args.order is not None and args.order not in (2, 4):
        raise ConfigError(_("{flag} must be 2 or 4, got {value}").format(flag="--order", value=args.order))
    if not args.step > 0:
        raise ConfigError(_("{flag} must be positive, got {value}").format(flag="--step", value=args.step))
    if args.seed < 0:
        raise ConfigError(_("{flag} must be a non-negative integer, got {value}").format(flag="--seed", value=args.seed))


def cmd(args) -> int:
    if args.cost_table:
        table = cost_table_from_args(args)
        print(json.dumps(table.to_dict()) if args.json else table.text())
        return 0
    _check_common(args)
    for flag, value in (("--table-sizes", args.table_sizes), ("--batch", args.batch), ("--repeats", args.repeats),
                        ("--budget", args.budget)):
        if value is not None:
            raise ConfigError(_("{flag} goes with --cost-table").format(flag=flag))
    if not args.tol > 0:
        raise ConfigError(_("{flag} must be positive, got {value}").format(flag="--tol", value=args.tol))
    if args.max_params is not None and args.max_params < 1:
        raise ConfigError(_("{flag} must be at least 1, got {value}").format(flag="--max-params", value=args.max_params))
    if args.samples is not None and args.samples < 1:
        raise ConfigError(_("{flag} must be at least 1, got {value}").format(flag="--samples", value=args.samples))
    net, X, T, lines = _model_problem(args) if args.model else _random_problem(args)
    return run_check(net, X, T, describe=lines, max_params=args.max_params, seed=args.seed, tol=args.tol,
                     order=args.order or 4, h=args.step, as_json=args.json)


def _parse_sizes(text: str, what: str = "--sizes") -> list[int]:
    try:
        sizes = [int(s) for s in str(text).split(",")]
    except ValueError:
        raise ConfigError(_("{flag} must be comma-separated integers like 4,8,3, got {value!r}").format(
            flag=what, value=text)) from None
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ConfigError(_("{flag} needs at least two positive widths (input and output), got {value!r}").format(
            flag=what, value=text))
    return sizes


def _random_problem(args):
    if args.data is not None or args.target is not None:
        raise ConfigError(_("--data and --target go with --model"))
    cfg = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in CHECK_DEFAULTS.items()}
    sizes = _parse_sizes(cfg["sizes"])
    net, X, T = random_problem(sizes, cfg["activation"], cfg["output_activation"], cfg["loss"],
                               samples=cfg["samples"], seed=args.seed, init=cfg["init"])
    return net, X, T, [_("network: {network}").format(network=_describe(net)),
                       ngettext("data: {n} random samples, weights {init} (seed {seed})",
                                "data: {n} random samples, weights {init} (seed {seed})", len(X)).format(
                           n=len(X), init=cfg["init"], seed=args.seed)]


def _describe(net: Network) -> str:
    acts = " -> ".join(dict.fromkeys(layer.activation.name for layer in net.layers))
    return ngettext("{sizes}, {activations}, loss {loss}, {dtype}, {n} parameters ({trainable} trainable)",
                    "{sizes}, {activations}, loss {loss}, {dtype}, {n} parameters ({trainable} trainable)",
                    net.n_params).format(sizes=sizes_name(net.sizes), activations=acts, loss=net.loss.name,
                                         dtype=net.dtype.name, n=f"{net.n_params:,}",
                                         trainable=f"{net.n_trainable:,}")


def _model_problem(args):
    given = [f for f, v in (("--sizes", args.sizes), ("--activation", args.activation),
                            ("--output-activation", args.output_activation), ("--loss", args.loss),
                            ("--init", args.init)) if v is not None]
    if given:
        raise ConfigError(ngettext("{flags} describes a random network; a --model brings its own",
                                   "{flags} describe a random network; a --model brings its own", len(given)).format(
            flags=", ".join(given)))
    if args.data is None:
        raise ConfigError(_("--model needs --data: a CSV file or built-in set name with the targets to check on"))
    from .cli import _load_for_model  # the same column alignment as 'deltaprop evaluate'
    from .model import Model

    model = Model.load(args.model)
    ds = _load_for_model(model, args.data, args.target)
    net = model.network
    if ds.T.shape != (len(ds), net.n_outputs):
        raise DataError(ngettext("{file}: targets of shape {shape} found, the model has {n} outputs; give --target",
                                 "{file}: targets of shape {shape} found, the model has {n} outputs; give --target",
                                 net.n_outputs).format(file=args.data, shape=ds.T.shape, n=net.n_outputs))
    X, T = model.prepare(ds.X), ds.T
    lines = []
    if net.dtype != np.float64:
        # float32 differences would be dominated by round-off (about 1e-7 / h relative).
        net = net.astype("float64")
        lines.append(_("note: the float32 model is checked in a float64 copy"))
    what = ngettext("all {n} samples", "all {n} samples", len(X)).format(n=f"{len(X):,}")
    if args.samples is not None and args.samples < len(X):
        rows = np.sort(np.random.default_rng(args.seed).choice(len(X), args.samples, replace=False))
        X, T = X[rows], T[rows]
        what = ngettext("{k} of {n} (drawn at random, seed {seed}) samples",
                        "{k} of {n} (drawn at random, seed {seed}) samples", len(ds)).format(
            k=f"{len(X):,}", n=f"{len(ds):,}", seed=args.seed)
    std = _("standardised with the model's training statistics") if model.standardizer else _("not standardised")
    return net, X, T, [_("network: {network} from {file}").format(network=_describe(net), file=args.model),
                       _("data: {file}, {samples}, {standardised}").format(file=args.data, samples=what,
                                                                          standardised=std), *lines]


def cost_table_from_args(args) -> CostTable:
    """Validate the --cost-table options of ``args``, fill in their defaults and measure."""
    _check_common(args)
    if args.model or args.data:
        raise ConfigError(_("--cost-table times random networks; it takes no --model or --data"))
    if args.max_params is not None or args.samples is not None or args.sizes is not None:
        raise ConfigError(_("--cost-table takes --table-sizes and --batch, not --sizes, --samples or --max-params"))
    # Filled in on args itself, where bench/cost_page.py reads them to describe the run.
    for k, v in {**TABLE_DEFAULTS, **{k: CHECK_DEFAULTS[k] for k in NETWORK_KEYS}}.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    for flag, value in (("--batch", args.batch), ("--repeats", args.repeats)):
        if value < 1:
            raise ConfigError(_("{flag} must be at least 1, got {value}").format(flag=flag, value=value))
    if not args.budget >= 0:
        raise ConfigError(_("{flag} must be a non-negative number of seconds, got {value}").format(
            flag="--budget", value=args.budget))
    if args.table_sizes:
        sizes_list = [_parse_sizes(s, "--table-sizes") for s in args.table_sizes.split(";") if s.strip()]
    else:
        sizes_list = [list(s) for s in DEFAULT_COST_SIZES]
    if not sizes_list:
        raise ConfigError(_("--table-sizes names no architecture"))

    # Unknown activations or impossible pairings fail here, before the minute of measuring.
    for s in sizes_list:
        Network(s, args.activation, args.output_activation, args.loss)
    return cost_table(sizes_list, batch=args.batch, order=args.order or 2, h=args.step, repeats=args.repeats,
                      numeric_budget=args.budget, seed=args.seed, activation=args.activation,
                      output_activation=args.output_activation, loss=args.loss)
