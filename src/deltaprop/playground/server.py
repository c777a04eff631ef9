"""The playground's HTTP server: the page's assets, a JSON API and a stream of frames (SSE).

Why the standard library's :class:`http.server.ThreadingHTTPServer` and server-sent events,
not Starlette + uvicorn and websockets: the playground serves one person on their own machine
(a few tabs, 20 frames per second each), which a thread per connection does with room to
spare; the page sends its few commands as ordinary POSTs, so a one-way stream is all it needs,
and ``EventSource`` reconnects by itself; and it adds no dependency to install or keep up.

Safety: it binds to 127.0.0.1 unless told otherwise; it serves only the files named in
:data:`ASSETS` (read with :mod:`importlib.resources`, never a path built from the request);
request bodies are capped (:data:`MAX_BODY`) and must be JSON objects; every setting is checked
by the settings table and the caps of :data:`deltaprop.playground.session.LIMITS`; an error
comes back as ``{"error": "..."}`` with status 400, which the page shows.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from .. import i18n
from ..i18n import gettext as _
from ..errors import DeltapropError
from . import data as pdata
from .session import LIMITS, PAGE_KEYS, Session, defaults_for

__all__ = ["ASSETS", "MAX_BODY", "FRAMES_PER_SECOND", "PlaygroundServer", "make_server"]

#: URL path -> (file in the package's assets folder, content type). Nothing else is served.
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
#: Largest request body: an uploaded CSV (see :data:`deltaprop.playground.data.MAX_UPLOAD_BYTES`)
#: as JSON text, with room for its escapes and the settings.
MAX_BODY = 2 * pdata.MAX_UPLOAD_BYTES + 65_536
#: Frames a page gets per second at most while the run changes (a heartbeat otherwise).
FRAMES_PER_SECOND = 20
#: The gettext domain of the page's own texts (its HTML and JavaScript).
PAGE_DOMAIN = "playground"
_SID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


class _BadRequest(Exception):
    pass


def _dumps(obj) -> str:
    """JSON for the page: NaN and infinities (a diverging run's numbers) as null, which
    JavaScript's JSON.parse reads; Python's default NaN is not JSON."""
    try:
        return json.dumps(obj, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_finite(obj), allow_nan=False, separators=(",", ":"))


def _finite(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _asset(name: str) -> bytes:
    return (resources.files("deltaprop.playground") / "assets" / name).read_bytes()


def _choices() -> dict:
    from ..activations import ACTIVATIONS
    from ..losses import LOSSES
    from ..optimizers import OPTIMIZERS
    from ..schedules import SCHEDULES
    from ..techniques import STALL_REMEDIES

    return {"activations": sorted(ACTIVATIONS), "losses": sorted(LOSSES), "optimizers": sorted(n for n, c in OPTIMIZERS.items() if not getattr(c, "runs_own_loop", False)),
            "schedules": sorted(SCHEDULES), "stall_remedies": sorted(STALL_REMEDIES),
            "modes": ["stochastic", "minibatch", "batch"],
            "batch_only": sorted(n for n, c in OPTIMIZERS.items() if getattr(c, "batch_only", False))}


class PlaygroundServer(ThreadingHTTPServer):
    """Holds the sessions (one per tab, at most ``LIMITS['sessions']``)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler=None, lang: str = "en"):
        super().__init__(address, handler or _Handler)
        #: The page's language unless it asks for another (``deltaprop playground --lang``).
        self.lang = lang if lang in i18n.LANGUAGES else "en"
        self.sessions: dict[str, Session] = {}
        self.sessions_lock = threading.Lock()
        self.closing = False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def session(self, sid: str) -> Session:
        if not _SID.match(sid or ""):
            raise _BadRequest(_("bad session id {sid} (letters, digits, - and _, at most 40)").format(sid=repr(sid)))
        with self.sessions_lock:
            s = self.sessions.get(sid)
            if s is None:
                if len(self.sessions) >= LIMITS["sessions"]:
                    idle = [x for x in self.sessions.values() if x.listeners == 0]
                    if not idle:
                        raise _BadRequest(_("{n} pages are open already; close one").format(n=LIMITS["sessions"]))
                    oldest = min(idle, key=lambda x: x.last_seen)
                    del self.sessions[oldest.sid]
                    oldest.close()
                s = self.sessions[sid] = Session(sid)
            s.last_seen = time.monotonic()
            return s

    def close_all(self) -> None:
        self.closing = True
        with self.sessions_lock:
            sessions = list(self.sessions.values())
            self.sessions.clear()
        for s in sessions:
            s.close()


class _Handler(BaseHTTPRequestHandler):
    server: PlaygroundServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # the terminal shows the URL, not every request
        pass

    # ----------------------------------------------------------------- replies
    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj, status: int = 200) -> None:
        self._send(status, _dumps(obj).encode(), "application/json")

    def _error(self, message: str, status: int = 400) -> None:
        self._json({"error": message}, status)

    def _body(self) -> dict:
        # JSON only: a form or text/plain post from another site's page (which a browser
        # sends without asking) is refused; application/json from elsewhere needs a CORS
        # preflight, which this server never grants.
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _BadRequest(_("requests must be application/json, not {type}").format(type=ctype or _("untyped")))
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise _BadRequest(_("a request body needs a Content-Length"))
        n = int(length)
        if n > MAX_BODY:
            raise _BadRequest(_("request body of {n:,} bytes; at most {most:,}").format(n=n, most=MAX_BODY))
        raw = self.rfile.read(n)
        try:
            obj = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _BadRequest(_("the request body is not JSON ({reason})").format(reason=exc)) from None
        if not isinstance(obj, dict):
            raise _BadRequest(_("the request body must be a JSON object"))
        return obj

    # ----------------------------------------------------------------- routes
    def do_HEAD(self):
        if urlsplit(self.path).path in ASSETS and self._host_ok():
            self.do_GET()
        else:
            self._send(404, b"", "text/plain")

    def _host_ok(self) -> bool:
        """A Host header naming this server: a page of another site that a DNS name was
        pointed at 127.0.0.1 for (DNS rebinding) sends its own name and is refused."""
        host = (self.headers.get("Host") or "").strip().lower()
        port = self.server.server_address[1]
        bound = self.server.server_address[0]
        allowed = {f"{bound}:{port}", f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"}
        return host in allowed or bound not in ("127.0.0.1", "localhost", "::1")

    def do_GET(self):
        self._dispatch(self._route_get)

    def do_POST(self):
        self._dispatch(self._route_post)

    def _dispatch(self, route) -> None:
        """``route()`` in the language of the page that asks; a refusal or an error comes back
        as ``{"error": ...}`` in that language (400; 403 for another host; 503 for a run
        that does not answer in time)."""
        with i18n.language(self._lang()):
            if not self._host_ok():
                self._error(_("this server answers only to its own address ({url})").format(url=self.server.url), 403)
                return
            try:
                route()
            except (_BadRequest, DeltapropError) as exc:
                self._error(str(exc))
            except (BrokenPipeError, ConnectionResetError):
                pass
            except TimeoutError as exc:
                self._error(str(exc), 503)

    def _lang(self) -> str:
        """The language of the page that asks: its header (the page's selector), else ``?lang=``
        (links and the event stream), else the server's (``--lang``). Messages, explain's
        worksheet and the data sets' descriptions are then in it."""
        asked = self.headers.get("X-Deltaprop-Lang") or parse_qs(urlsplit(self.path).query).get("lang", [""])[0]
        return asked if asked in i18n.LANGUAGES else self.server.lang

    def _route_get(self):
        url = urlsplit(self.path)
        path = url.path
        if path in ASSETS:
            name, ctype = ASSETS[path]
            self._send(200, _asset(name), ctype)
            return
        if path == "/api/meta":
            self._json({"datasets": {k: i18n.gettext(v) for k, v in pdata.DATASETS.items()}, "choices": _choices(),
                        "limits": LIMITS, "page_keys": list(PAGE_KEYS), "frames_per_second": FRAMES_PER_SECOND,
                        "lang": self.server.lang, "languages": list(i18n.LANGUAGES)})
            return
        if path == "/api/page-catalog":
            self._json(page_catalog(i18n.current()))
            return
        if path == "/api/defaults":
            data = parse_qs(url.query).get("data", ["xor"])[0]
            self._json(defaults_for(data))
            return
        m = re.match(r"^/api/session/([^/]+)/(setup|events|export/model\.npz|export/config\.toml|export/data)$", path)
        if not m:
            self._error(_("not found"), HTTPStatus.NOT_FOUND)
            return
        s = self.server.session(m.group(1))
        what = m.group(2)
        if what == "setup":
            self._json(s.setup())
        elif what == "events":
            self._events(s)
        elif s.run is None:
            raise _BadRequest(_("no run to export yet"))
        elif what == "export/model.npz":
            self._send(200, s.export_model(), "application/octet-stream",
                       {"Content-Disposition": 'attachment; filename="playground-model.npz"'})
        elif what == "export/config.toml":
            text, _path = s.export_config()
            self._send(200, text.encode(), "application/toml; charset=utf-8",
                       {"Content-Disposition": 'attachment; filename="playground.toml"'})
        else:
            got = s.export_data()
            if got is None:
                raise _BadRequest(_("the data set {name} is built in: no file to download").format(name=repr(s.config.data)))
            name, body = got
            self._send(200, body, "text/csv; charset=utf-8",
                       {"Content-Disposition": f'attachment; filename="{name}"'})

    def _route_post(self):
        path = urlsplit(self.path).path
        body = self._body()
        if path == "/api/csv-columns":
            text = body.get("text")
            if not isinstance(text, str):
                raise _BadRequest(_("csv-columns needs 'text', the CSV file's text"))
            self._json({"columns": pdata.csv_columns(text[:65536])})
            return
        m = re.match(r"^/api/session/([^/]+)/(configure|control|explain|gradcheck|compare|internals)$", path)
        if not m:
            self._error(_("not found"), HTTPStatus.NOT_FOUND)
            return
        s = self.server.session(m.group(1))
        what = m.group(2)
        if what == "configure":
            data = body.get("data")
            if not isinstance(data, str):
                raise _BadRequest(_("configure needs 'data', the name of a data set"))
            settings = body.get("settings", {})
            csv = body.get("csv")
            if csv is not None and not isinstance(csv, dict):
                raise _BadRequest(_("'csv' must be an object with text, x, y and target"))
            s.configure(data, settings, csv)
            self._json(s.setup())
            return
        if s.run is None:
            raise _BadRequest(_("no run yet: press reset to start one"))
        if what == "control":
            action = body.get("action")
            if not isinstance(action, str):
                raise _BadRequest(_("control needs 'action'"))
            s.control(action, body.get("rate"))
            self._json({"ok": True})
        elif what == "explain":
            param = body.get("param")
            if param is not None and not isinstance(param, str):
                raise _BadRequest(_("'param' must be a parameter name such as W1[0,1]"))
            self._json(s.explain(param))
        elif what == "internals":
            self._json(s.internals(body.get("param")))
        elif what == "gradcheck":
            self._json(s.gradcheck())
        else:
            from .compare import compare_modes

            self._json(compare_modes(s, body.get("epochs", 50)))

    # ----------------------------------------------------------------- the stream
    def _events(self, s: Session) -> None:
        """Frames as server-sent events until the page goes: an ``setup`` event when the run
        is new, then a frame whenever it changed (at most FRAMES_PER_SECOND), a comment every
        15 s otherwise. A page that goes leaves the run paused, ready for it to come back."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        s.listeners += 1
        run, version, cursor_u, cursor_e = None, -1, 0, 0
        quiet_since = time.monotonic()
        try:
            while not self.server.closing:
                if s.run is not run:
                    run, cursor_u, cursor_e = s.run, 0, 0
                    self._event("setup", s.setup())
                if s.version != version or s.gate.playing:
                    version = s.version
                    frame = s.frame(cursor_u, cursor_e)
                    if frame.get("ready"):
                        cursor_u, cursor_e = frame["n_updates"], frame["n_epochs"]
                    self._event("frame", frame)
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > 15:
                    self.wfile.write(b": still here\n\n")
                    self.wfile.flush()
                    quiet_since = time.monotonic()
                s.last_seen = time.monotonic()
                time.sleep(1.0 / FRAMES_PER_SECOND)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            s.listeners -= 1
            if s.listeners <= 0:
                s.gate.set(playing=False)

    def _event(self, kind: str, obj) -> None:
        data = _dumps(obj)
        self.wfile.write(f"event: {kind}\ndata: {data}\n\n".encode())
        self.wfile.flush()


def page_catalog(lang: str) -> dict:
    """The page's own messages in ``lang`` as ``{English: translation}``, from the compiled
    catalog of the ``playground`` domain (``locale/LANG/LC_MESSAGES/playground.po``, managed with
    Babel like deltaprop's own; the page's texts are in its HTML and JavaScript, so they have a
    catalog of their own, which the page fetches as JSON). English: empty, the texts themselves."""
    return {} if lang == "en" else _page_catalog(lang)


@functools.lru_cache(maxsize=None)
def _page_catalog(lang: str) -> dict:
    import gettext

    # A language without a page catalog yet: the page stays English (fallback).
    t = gettext.translation(PAGE_DOMAIN, localedir=str(i18n.LOCALE_DIR), languages=[lang], fallback=True)
    # The catalog's own table, as Django's JavaScriptCatalog reads it; the header (msgid "")
    # is not a message.
    return {k: v for k, v in getattr(t, "_catalog", {}).items() if isinstance(k, str) and k}


def make_server(host: str = "127.0.0.1", port: int = 8765, lang: str = "en") -> PlaygroundServer:
    """A server bound to ``host:port`` (port 0: a free one), not yet serving; ``lang``: the
    page's language unless the page chooses another."""
    return PlaygroundServer((host, port), lang=lang)
