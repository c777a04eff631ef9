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
