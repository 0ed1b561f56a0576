"""Pictures (matplotlib, ``pip install "ruvector[viz]"``): attention weights as heat maps,
an ATTEND traversal over a graph store, training loss curves.

Each function returns a ``matplotlib.figure.Figure`` built without pyplot (no display or
backend needed); :func:`save_figure` writes it as PNG, SVG or PDF, atomically.
"""
from .attention import attention_heatmap, attention_weights
from .figure import save_figure
from .graph import traversal
from .training import training_curves

__all__ = ["attention_heatmap", "attention_weights", "traversal", "training_curves",
           "save_figure"]
