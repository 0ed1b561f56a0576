"""A small readers-writer lock (many concurrent readers, one exclusive writer)."""
import contextlib
import threading


class RWLock:
    """Writers wait for running readers to finish and block new readers while waiting."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextlib.contextmanager
    def read(self):
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self):
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


class ModeGate:
    """Shared holds tagged with a mode: holders of one mode run together, other modes wait.

    Used where a setting of a native object is shared by concurrent callers (hnswlib's
    search ``ef``): ``hold(mode, switch)`` runs ``switch()`` when a phase of ``mode`` starts,
    and no caller of another mode runs until that phase ends.  A caller of a different mode
    that is waiting stops new callers of the running mode from joining, so no mode starves.
    """

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._mode = None
        self._holders = 0
        self._waiting = {}  # mode -> callers waiting for it

    def _may_enter(self, mode):
        if not self._holders:
            return True
        return self._mode == mode and not any(
            n for m, n in self._waiting.items() if m != mode)

    @contextlib.contextmanager
    def hold(self, mode, switch):
        with self._cond:
            self._waiting[mode] = self._waiting.get(mode, 0) + 1
            while not self._may_enter(mode):
                self._cond.wait()
            self._waiting[mode] -= 1
            if not self._waiting[mode]:
                del self._waiting[mode]
            if not self._holders:
                self._mode = mode
                switch()
            self._holders += 1
        try:
            yield
        finally:
            with self._cond:
                self._holders -= 1
                if not self._holders:
                    self._mode = None
                    self._cond.notify_all()
