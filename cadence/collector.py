"""How cadence's processes run Python's cyclic garbage collector: the one place that says
so, for the command line, the daemon and the bench that measures them.

Planning and sending make values by the thousand that reference counting frees on its own.
The collector is only for cycles, and by default it runs every 700 new objects and, in its
older generations, walks everything alive, the modules and rules included. So it looks at the
youngest generation every YOUNG_GENERATION objects, and what a process has loaded when its
first store opens is frozen out of its way (`settle`). The figures are in
`docs/performance.md`.
"""

from __future__ import annotations

import gc

#: objects made before the youngest generation is looked at (Python's default is 700)
YOUNG_GENERATION = 10_000

_settled = False


def collect_less() -> None:
    """The youngest generation looked at every YOUNG_GENERATION objects, the older ones as
    Python has them."""
    gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])


def settle() -> None:
    """Once a process: what is loaded by now lives as long as the process, and the collector
    leaves it alone from here on (`gc.freeze`). Only once: a process that opens many stores
    (the tests) would freeze each one's garbage with it."""
    global _settled
    if not _settled:
        _settled = True
        gc.freeze()
