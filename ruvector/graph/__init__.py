"""Graph structures, GNN blocks and pooling (GNN names load lazily: the attention layers
import ``ruvector.graph.csr``, and ``gnn`` imports the attention layers)."""
from importlib import import_module

from .csr import CSRGraph

_LAZY = {"AttentionGNNLayer", "GNN", "AttentionalPooling", "subgraph_embedding"}
_STORE = {"GraphStore"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module("ruvector.graph.gnn"), name)
    if name in _STORE:
        return getattr(import_module("ruvector.graph.store"), name)
    raise AttributeError(f"module 'ruvector.graph' has no attribute {name!r}")


__all__ = ["CSRGraph", "GraphStore", *sorted(_LAZY)]
