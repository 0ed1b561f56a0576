"""A one-line notice on stderr when a family of ruvector's Numba kernels compiles.

Numba compiles a kernel on its first call and caches it on disk (``cache=True``); later
processes load it without a compile event.  The first run in a fresh environment therefore
pauses for compilation (about a minute for the whole package), which a user should see
explained.  Printed once per kernel module and process, only when stderr is a terminal, and
never with ``RUVECTOR_QUIET=1``; ``ruvector warmup`` compiles everything ahead of time.
"""
import os
import sys

import numba.core.event as numba_event

_announced = set()


def _family(event):
    data = event.data if isinstance(event.data, dict) else {}
    func = getattr(data.get("dispatcher"), "py_func", None)
    module = getattr(func, "__module__", "") or ""
    return module if module.startswith("ruvector") else None


class _Notice(numba_event.Listener):
    def on_start(self, event):
        family = _family(event)
        if family is None or family in _announced:
            return
        _announced.add(family)
        if os.environ.get("RUVECTOR_QUIET", "") not in ("", "0") or not _is_tty(sys.stderr):
            return
        name = family.rsplit(".", 1)[-1].lstrip("_")
        print(f"ruvector: compiling the {name} kernels for first use (cached for later runs; "
              "`ruvector warmup` precompiles, RUVECTOR_QUIET=1 hides this)", file=sys.stderr,
              flush=True)

    def on_end(self, event):
        pass


def _is_tty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


numba_event.register("numba:compile", _Notice())
