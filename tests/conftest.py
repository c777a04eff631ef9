import contextlib
import threading

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def worst(ours, ref):
    """'ours vs reference' at the worst element, for readable assertion messages."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    i = np.unravel_index(np.argmax(np.abs(ours - ref)), ours.shape) if ours.size else ()
    return f"worst at {i}: ours {ours[i]!r} vs reference {ref[i]!r}"


def central_differences(f, x, h=1e-6):
    """d f / d x[i] for a scalar function f of the array x, by central differences, entry by entry."""
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, dn = x.copy(), x.copy()
        up[i] += h
        dn[i] -= h
        num[i] = (f(up) - f(dn)) / (2 * h)
    return num


@contextlib.contextmanager
def running_playground():
    """A playground server on a free loopback port, serving from a thread; shut down, its
    sessions closed and the port released on exit (the playground tests' one way to start one)."""
    from deltaprop.playground import make_server

    srv = make_server("127.0.0.1", 0)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.close_all()
        srv.server_close()
        t.join(5)
