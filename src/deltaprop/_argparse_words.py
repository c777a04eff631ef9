"""argparse's own words, marked for deltaprop's catalog.

argparse looks these up with ``gettext`` while it builds a parser, prints help or reports a
usage error (Python 3.10 to 3.13 use these exact ids); :func:`deltaprop.i18n.translate_argparse`
routes that look-up to deltaprop's catalog. Listed here so that ``pybabel extract`` finds them.
"""

from .i18n import N_

WORDS = (
    N_("usage: "),
    N_("positional arguments"),
    N_("options"),
    N_("show this help message and exit"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("unrecognized arguments: %s"),
    N_("the following arguments are required: %s"),
    N_("one of the arguments %s is required"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("not allowed with argument %s"),
    N_("ignored explicit argument %r"),
    N_("unexpected option string: %s"),
    N_("can't open '%(filename)s': %(error)s"),
)


def expected_arguments(n: int) -> str:  # pragma: no cover - only here for the catalog's plural entry
    from .i18n import ngettext

    return ngettext("expected %s argument", "expected %s arguments", n)
