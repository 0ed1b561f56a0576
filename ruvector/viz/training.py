"""Loss curves of a training run."""
import json
import math

import numpy as np

from ..errors import InvalidInput, StorageError
from .figure import new_figure


def training_curves(history, *, title="training", log_scale=None):
    """Loss per epoch: ``history`` is a list of losses, a ``{name: [losses]}`` dict (an
    integer ``best_epoch`` entry marks the kept epoch), an object with ``validation`` and
    ``best_epoch`` attributes (what ``AttentionDistance.fit`` returns), or the path of a JSON
    file holding one of these.  ``log_scale`` (default: when all losses are positive and
    span over 100x) draws the y axis logarithmic; NaN epochs are gaps."""
    series, best = _series(history)
    fig = new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])
    if finite.size == 0:
        raise InvalidInput("the history holds no finite loss to draw")
    for name, values in series.items():
        ax.plot(np.arange(1, len(values) + 1), values, marker="o" if len(values) < 30 else None,
                markersize=3, label=name)
    if best is not None:
        ax.axvline(best + 1, color="grey", linestyle="--", linewidth=1,
                   label=f"best epoch ({best + 1})")
    if log_scale is None:
        log_scale = bool(finite.min() > 0 and finite.max() > 100 * finite.min())
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    return fig


def _series(history):
    """({name: float array}, best epoch index or None)."""
    if isinstance(history, str):
        try:
            with open(history) as fh:
                history = json.load(fh)
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read the history {history}: {exc}") from None
    best = getattr(history, "best_epoch", None)
    if hasattr(history, "validation"):
        series = {"train": list(history), "validation": list(history.validation)}
    elif isinstance(history, dict):
        series = {str(k): v for k, v in history.items() if k != "best_epoch"}
        best = history.get("best_epoch")
    else:
        series = {"loss": history}
    out = {}
    for name, values in series.items():
        try:
            arr = np.asarray([math.nan if v is None else v for v in list(values)],
                             dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInput(f"history {name!r} must be a list of numbers") from None
        if arr.ndim != 1:
            raise InvalidInput(f"history {name!r} must be a flat list of numbers")
        if arr.size:
            out[name] = arr
    if not out:
        raise InvalidInput("the history is empty: nothing to draw")
    if best is not None and not (isinstance(best, int) and 0 <= best < max(map(len, out.values()))):
        raise InvalidInput(f"best_epoch {best!r} is not an epoch of the history")
    return out, best
