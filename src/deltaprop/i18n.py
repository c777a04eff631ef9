"""Messages in the reader's language: GNU gettext catalogs, English the fallback.

The catalogs are class-based (:class:`gettext.GNUTranslations` objects, never
``gettext.install``): the language in force is a :class:`contextvars.ContextVar`, set for a
block with :func:`language`, so that a library call from other code keeps English and two
threads may speak two languages. Message ids are the English texts.

``deltaprop/locale/<lang>/LC_MESSAGES/deltaprop.po`` is the source of a catalog, managed with
Babel (``pybabel extract`` / ``update`` / ``compile``, see docs/architecture.md, "Adding a
message"); the compiled ``.mo`` ships in the package. The language of a command: ``--lang``,
else ``DELTAPROP_LANG``, else the first of ``LANGUAGE`` (a colon-separated list), ``LC_ALL``,
``LC_MESSAGES`` and ``LANG`` that is set, as gettext itself looks them up.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from functools import lru_cache

__all__ = ["LANGUAGES", "DOMAIN", "choose", "language", "current", "translations", "gettext", "ngettext",
           "N_", "part", "render", "event_text", "translate_argparse"]

DOMAIN = "deltaprop"
#: The languages with a catalog; English is the messages' own language.
LANGUAGES = ("en", "ru")
LOCALE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale")


class _English:
    """English, the messages' own language: the identity (gettext.NullTranslations' two
    methods used here, without importing gettext, which `import deltaprop` need not pay for)."""

    @staticmethod
    def gettext(message: str) -> str:
        return message

    @staticmethod
    def ngettext(singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural


_ENGLISH = _English()
_active: contextvars.ContextVar[tuple[str, object]] = contextvars.ContextVar(
    "deltaprop_language", default=("en", _ENGLISH))


def _code(value: str | None) -> str | None:
    """``"ru_RU.UTF-8"`` -> ``"ru"``; ``None`` for a language without a catalog (or C/POSIX)."""
    if not value:
        return None
    code = value.split(".")[0].split("@")[0].split("_")[0].split("-")[0].lower()
    return code if code in LANGUAGES else None


def choose(flag: str | None = None, environ=None) -> str:
    """The language to speak: ``flag`` (``--lang``), else ``DELTAPROP_LANG``, else gettext's
    own variables in its order (LANGUAGE's list, then LC_ALL, LC_MESSAGES, LANG); ``"en"``
    when none names a language with a catalog."""
    env = os.environ if environ is None else environ
    if flag:
        return _code(flag) or "en"
    if _code(env.get("DELTAPROP_LANG")):
        return _code(env["DELTAPROP_LANG"])
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var)
        if not value:
            continue
        for item in value.split(":") if var == "LANGUAGE" else [value]:
            if _code(item):
                return _code(item)
        if var != "LANGUAGE":  # the first of these that is set decides, as in gettext and POSIX
            return "en"
    return "en"


@lru_cache(maxsize=None)
def translations(lang: str):
    """The catalog of ``lang``, a :class:`gettext.GNUTranslations` (English: the identity)."""
    if lang == "en":
        return _ENGLISH
    import gettext

    return gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[lang])


@contextlib.contextmanager
def language(lang: str):
    """Speak ``lang`` inside the block (messages, warnings, errors raised there)."""
    token = _active.set((lang, translations(lang)))
    try:
        yield
    finally:
        _active.reset(token)


def current() -> str:
    """The language in force (``"en"`` unless inside :func:`language`)."""
    return _active.get()[0]


def gettext(message: str) -> str:
    """``message`` in the language in force."""
    return _active.get()[1].gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of ``singular``/``plural`` for ``n`` in the language in force (Russian has
    three: 1 эпоха, 2 эпохи, 5 эпох)."""
    return _active.get()[1].ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks ``message`` for the catalog where it is defined; it is translated where shown."""
    return message


def part(message: str, **fields) -> dict:
    """One piece of a message kept as data (in a training event of a history file): the English
    template, marked with :func:`N_` where written, and its fields (numbers, strings)."""
    return {"text": message, "fields": fields}


def render(parts, lang: str | None = None) -> str:
    """The pieces of :func:`part` formatted and joined with ``"; "``, in ``lang`` (default: the
    language in force). An event keeps its English ``detail`` (a stable text in the history file)
    and its ``parts``, so that what is printed speaks the reader's language."""
    catalog = _active.get()[1] if lang is None else translations(lang)
    return "; ".join(catalog.gettext(p["text"]).format(**p["fields"]) for p in parts)


def event_text(event: dict) -> str:
    """What to print of a training event: its parts in the language in force, else its detail."""
    parts = event.get("parts")
    return render(parts) if parts else str(event.get("detail", ""))


@contextlib.contextmanager
def translate_argparse():
    """argparse's own words (``usage:``, ``options``, ``the following arguments are required``)
    through the catalog in force while a parser is built, prints help or reports an error.

    argparse looks up its words through ``gettext.gettext`` of the global domain; here its
    module's two names are pointed at the language in force for the block and restored after,
    so nothing is installed for other code."""
    import argparse

    saved = argparse._, argparse.ngettext
    argparse._, argparse.ngettext = gettext, ngettext
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved
