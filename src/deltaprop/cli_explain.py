"""``deltaprop explain``: one backpropagation update, every number named and derived.

Without ``--model`` it is Matt Mazur's worked example (2-2-2 sigmoid network, inputs 0.05,
0.10, targets 0.01, 0.99); with ``--model FILE --input ... --target ...`` it is one sample
through a model saved by ``deltaprop train --out``. The library builds the trace
(:mod:`deltaprop.explain`); this module only parses, calls and prints.
"""

from __future__ import annotations

import sys

from .cli import float_arg, int_arg
from .errors import ConfigError
from .i18n import gettext as _
from .explain import (BIAS_MODES, FORMATS, MAX_PARAMS, MAX_STEPS, UPDATE_ORDERS, check_size,
                      explain_model, explain_worked_example, model_target, parse_values, render)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "explain", help=_("trace one backpropagation update step by step (Mazur's worked example by default)"),
        description=_("Trace one backpropagation update: every net and out, each output's error, every "
                    "partial derivative as the product of its chain-rule factors, the deltas, the "
                    "updated weights and the new error. Without --model: Matt Mazur's 'A Step by Step "
                    "Backpropagation Example'."))
    p.add_argument("--model", help=_("explain a model saved by 'deltaprop train --out' (needs --input and --target)"))
    p.add_argument("--input", help=_("one sample's inputs, comma separated, e.g. 0.1,0.2 (raw: a model's "
                                   "standardisation is applied and shown)"))
    p.add_argument("--target", help=_("its targets, comma separated (or one class label of a classifier)"))
    p.add_argument("--lr", type=float_arg, help=_("learning rate eta (default 0.5, the article's)"))
    p.add_argument("--steps", type=int_arg, default=1,
                   help=_("updates to run on the sample (1 to {max}); the first is traced in full, "
                          "the error is reported every so often and after the last (default 1)").format(max=MAX_STEPS))
    p.add_argument("--update-order", choices=UPDATE_ORDERS, default="simultaneous",
                   help=_("simultaneous: every gradient from the weights before the update (gradient descent, "
                        "the article's arithmetic); output-first: update each layer before back-propagating "
                        "through it (what the article's summary figures follow from)"))
    p.add_argument("--train-biases", choices=BIAS_MODES,
                   help=_("none: held fixed (the article); shared: one bias per layer as the article draws "
                        "it; per-neuron: one per unit (default: none, or as the model was trained)"))
    p.add_argument("--format", choices=FORMATS, default="text",
                   help=_("text table, Markdown with LaTeX, or JSON (default text)"))
    p.set_defaults(func=cmd)


def cmd(args) -> int:
    lr = 0.5 if args.lr is None else args.lr
    if args.model is None:
        inputs = parse_values(args.input, "--input") if args.input is not None else None
        targets = parse_values(args.target, "--target") if args.target is not None else None
        trace = explain_worked_example(lr=lr, steps=args.steps, update_order=args.update_order,
                                       train_biases=args.train_biases or "none", inputs=inputs,
                                       targets=targets)
    else:
        if args.input is None or args.target is None:
            raise ConfigError(_("--model needs --input (the sample's inputs) and --target (its targets)"))
        from .model import Model

        model = Model.load(args.model)
        check_size(model.network, MAX_PARAMS, args.model)  # before the sample: the size is the problem
        trace = explain_model(model, parse_values(args.input, "--input"), model_target(model, args.target),
                              lr=lr, steps=args.steps, update_order=args.update_order,
                              train_biases=args.train_biases, source=args.model)
    sys.stdout.write(render(trace, args.format))
    return 0
