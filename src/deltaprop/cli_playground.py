"""``deltaprop playground``: a local page that trains a network and shows every number of every
update (:mod:`deltaprop.playground`). This module only parses, starts the server and prints."""

from __future__ import annotations

import sys

from .cli import int_arg
from .errors import ConfigError
from .i18n import current, gettext as _


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "playground", help=_("a local page: watch a network learn, every number of every update one click away"),
        description=_("Start a local web page that trains a network with deltaprop (the same results as "
                      "'deltaprop train --engine numpy' for the same settings and seed), draws the decision "
                      "regions, loss curves and weights as it learns, and shows 'deltaprop explain's "
                      "worksheet for any weight you click. The page speaks the language of --lang (it has "
                      "its own selector too). Stop it with Ctrl-C."))
    p.add_argument("--port", type=int_arg, default=8765, help=_("port to listen on (default 8765; 0: any free one)"))
    p.add_argument("--host", default="127.0.0.1",
                   help=_("address to listen on (default 127.0.0.1: this machine only; the page has no login, "
                          "so listen elsewhere only on a network you trust)"))
    p.add_argument("--no-browser", action="store_true", help=_("print the address without opening a browser"))
    p.set_defaults(func=cmd)


def cmd(args) -> int:
    from .playground import make_server

    if not 0 <= args.port <= 65535:
        raise ConfigError(_("--port must be 0 to 65535, got {port}").format(port=args.port))
    try:
        server = make_server(args.host, args.port, lang=current())
    except OSError as exc:
        import errno
        import socket

        if isinstance(exc, socket.gaierror) or exc.errno in (errno.EADDRNOTAVAIL,):  # the host is the trouble
            raise ConfigError(_("cannot listen on {host}:{port} ({reason}); give another --host (e.g. 127.0.0.1)").format(
                host=args.host, port=args.port, reason=exc.strerror or exc)) from None
        raise ConfigError(_("cannot listen on {host}:{port} ({reason}); give another --port").format(
            host=args.host, port=args.port, reason=exc.strerror or exc)) from None
    print(_("deltaprop playground: {url}  (Ctrl-C stops it)").format(url=server.url), flush=True)
    if not args.no_browser:
        import webbrowser

        if not webbrowser.open(server.url):
            print(_("deltaprop playground: no browser found; open the address above"), file=sys.stderr)
    import signal

    def stop(signum, frame):  # SIGTERM (kill, a service manager) stops as cleanly as Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close_all()
        server.server_close()
    print(_("deltaprop playground: stopped"), flush=True)
    return 0
