"""Graph store: NetworkX in and out, a read-only array snapshot for the layers and queries."""
import warnings

from .arrays import GraphArrays
from .store import GraphStore

_MOVED = {"AttentionGNNLayer", "GNN", "AttentionalPooling", "subgraph_embedding", "CSRGraph"}


def __getattr__(name):
    if name in _MOVED:
        new = "ruvector.nn" if name == "CSRGraph" else "ruvector.gnn"
        warnings.warn(f"ruvector.graph.{name} moved to {new}.{name}; the old path goes in the "
                      "next release", DeprecationWarning, stacklevel=2)
        from importlib import import_module
        return getattr(import_module(new), name)
    raise AttributeError(f"module 'ruvector.graph' has no attribute {name!r}")


__all__ = ["GraphStore", "GraphArrays"]
