"""The page's own catalog: what of index.html is translated, as a Babel extractor.

The page's texts live in its HTML and JavaScript, so they have a gettext domain of their own,
``playground`` (``locale/LANG/LC_MESSAGES/playground.po``), which the server hands to the page
as JSON (:func:`deltaprop.playground.server.page_catalog`). The JavaScript's messages are the
string arguments of ``tr(...)``, which Babel's own ``javascript`` extractor finds; the HTML's are
found here: the content of every element marked ``data-i18n`` (its inner HTML, whitespace
collapsed, as the page reads ``innerHTML`` to look it up) and every ``title`` and ``placeholder``
attribute. Regenerate the template with (from the repository root)::

    pybabel extract -F babel-playground.cfg --no-default-keywords -k tr --no-location --sort-output -w 100 \\
        -o src/deltaprop/locale/playground.pot .
    pybabel update -i src/deltaprop/locale/playground.pot -d src/deltaprop/locale -D playground -w 100 \\
        --no-fuzzy-matching
    pybabel compile -D playground -d src/deltaprop/locale
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_messages", "extract_html"]

#: Elements without an end tag (their content cannot be marked).
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class _Finder(HTMLParser):
    def __init__(self, source: str):
        super().__init__(convert_charrefs=False)
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.stack: list[tuple[str, int | None]] = []  # (tag, where a marked element's content starts)
        self.found: list[tuple[int, str]] = []  # (line, message)

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("title", "placeholder"):
            if attrs.get(name):
                self.found.append((self.getpos()[0], _collapse(attrs[name])))
        if tag in _VOID:
            return
        start = self._offset() + len(self.get_starttag_text()) if "data-i18n" in attrs else None
        self.stack.append((tag, start))

    def handle_endtag(self, tag):
        while self.stack:
            open_tag, start = self.stack.pop()
            if start is not None:
                text = _collapse(self.source[start:self._offset()])
                if text:
                    self.found.append((self.getpos()[0], text))
            if open_tag == tag:
                break


def html_messages(source: str) -> list[tuple[int, str]]:
    """``(line, message)`` for each translatable text of the page's HTML ``source``."""
    finder = _Finder(source)
    finder.feed(source)
    finder.close()
    return finder.found


def extract_html(fileobj, keywords, comment_tags, options):
    """Babel's extractor interface: ``(line, funcname, message, comments)`` per message."""
    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    for line, message in html_messages(source):
        yield line, None, message, []
