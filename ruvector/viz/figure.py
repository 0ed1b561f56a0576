"""matplotlib figures without pyplot, and saving them."""
import os

from .._optional import require
from .._persist import write_file_atomic
from .._validate import choice
from ..errors import InvalidInput

FORMATS = ("png", "svg", "pdf")


def new_figure(width, height):
    """An empty Figure of ``width`` x ``height`` inches (Agg canvas: headless)."""
    fig = require("matplotlib.figure", "viz", "Pictures").Figure(
        figsize=(width, height), layout="constrained")
    require("matplotlib.backends.backend_agg", "viz", "Pictures").FigureCanvasAgg(fig)
    return fig


def colour_map(name):
    """The matplotlib colour map ``name``, with NaN cells (masked) drawn white."""
    colormaps = require("matplotlib", "viz", "Pictures").colormaps
    try:
        return colormaps[name].with_extremes(bad="white")
    except KeyError:
        raise InvalidInput(f"unknown colour map {name!r}") from None


def save_figure(fig, path, format=None, dpi=120):
    """Write ``fig`` to ``path`` (format from ``format`` or the file's suffix: png, svg or
    pdf; SVG keeps text as text); the file is replaced whole or not at all.  Returns the path."""
    fmt = format or os.path.splitext(str(path))[1].lstrip(".").lower() or "png"
    choice(fmt, "format", FORMATS)
    matplotlib = require("matplotlib", "viz", "Pictures")
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays searchable text
        write_file_atomic(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))
    return str(path)
