"""tqdm progress bars that switch themselves off when stderr is not a terminal."""
import sys


def progress(iterable=None, *, total=None, desc=None, enabled=True, unit="it"):
    """A tqdm bar over ``iterable`` (or a manual bar with ``total``); disabled when
    ``enabled`` is false or stderr is not a TTY."""
    from tqdm import tqdm
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False,
                disable=not enabled or not sys.stderr.isatty())
