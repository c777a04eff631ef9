"""The step-by-step trace of one backpropagation update: every number, named and derived.

Three modules, one job each:

* :mod:`.trace`: builds the trace (:func:`explain`, :func:`explain_worked_example`,
  :func:`explain_model`), runs the update step, checks sizes and parses samples; the
  formulas the trace records, the update orders and bias modes are described there;
  :data:`MAZUR` and the limits :data:`MAX_PARAMS`, :data:`MAX_STEPS`.
* :mod:`.naming`: what the quantities are called (:class:`Names`, deltaprop's ``W1[0,1]``;
  :class:`MazurNames`, the article's ``w5``) and the display templates of the formulas
  (activations, losses, sums).
* :mod:`.rendering`: :func:`render` and its text, Markdown and JSON forms, with the number
  formatting. (Not ``render.py``: a submodule would share its name with the function.)

Everything is imported from here, as ``from deltaprop.explain import explain, render``.
"""

from .naming import MazurNames, Names
from .rendering import FORMATS, render, render_json, render_markdown, render_text
from .trace import (BIAS_MODES, MAX_PARAMS, MAX_STEPS, MAZUR, TRACE_FORMAT, TRACE_VERSION, UPDATE_ORDERS,
                    check_size, explain, explain_model, explain_worked_example, model_target, parse_values,
                    worked_example_network)

__all__ = [
    "MAX_PARAMS", "MAX_STEPS", "UPDATE_ORDERS", "BIAS_MODES", "FORMATS", "MAZUR",
    "Names", "MazurNames", "worked_example_network", "check_size", "explain", "explain_worked_example",
    "explain_model", "parse_values", "model_target", "render",
]
