"""The playground: a local page that trains a network through the library and shows every
number of every update (``deltaprop playground``).

* :mod:`.session`: one page's run, stepped update by update (:class:`SteppingEngine`), its
  frames, explain's trace of the next update, the optimizer's state, the gradient check, export;
* :mod:`.server`: the HTTP server (standard library), the page's assets, SSE;
* :mod:`.compare`: the three modes side by side;
* :mod:`.data`: the drawn data sets and uploaded CSV files;
* ``assets/``: the page (plain HTML, CSS and JavaScript; no build step, nothing from a CDN).
"""

from .server import make_server
from .session import LIMITS, Session, SteppingEngine

__all__ = ["make_server", "Session", "SteppingEngine", "LIMITS"]
