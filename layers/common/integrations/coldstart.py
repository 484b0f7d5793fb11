"""Init without garbage collection: each function's module loads with the cyclic collector paused.

Imported first by every app.py (so the pause covers Powertools and everything after it); the module's
last statement calls `loaded()`. What init creates (modules, classes, the catalog, settings) lives as
long as the process, so the collector's passes during init walk it all and free nothing: in a fresh
interpreter they cost about a tenth of the cold start, most of it one full pass over the ~60,000
objects Python, boto3 and Powertools create. Reference counting frees everything else as usual; the
collector resumes for the requests. The pause is taken on the first import only, which in Lambda is
the one init of the process; whoever loads a function module in a longer-lived process (the local
stack, tests) calls `loaded()` when the load fails, so a broken module cannot leave it paused.
"""

from __future__ import annotations

import gc

gc.disable()


def loaded() -> None:
    """Init is over (or failed): the collector runs again."""
    gc.enable()
