"""ruvector: vector search, graph stores and attention, Numba-accelerated.

Importing the package is cheap: the numeric modules (and Numba) load on first use of a
name below, and kernels compile lazily (cached on disk) on their first call.
"""
from importlib import import_module

from .errors import (CorruptFile, DimensionMismatch, InvalidConfig, InvalidInput, LockedError,
                     NotFound, QueryError, QueryLimitExceeded, QuerySyntaxError, RuvectorError,
                     StorageError)

__version__ = "0.1.0"

_LAZY = {
    "ScaledDotProductAttention": "ruvector.attention.scaled_dot",
    "MultiHeadAttention": "ruvector.attention.multihead",
    "scaled_dot_product_attention": "ruvector.attention.functional",
    "Module": "ruvector.nn.module",
    "Linear": "ruvector.nn.layers",
    "LayerNorm": "ruvector.nn.layers",
    "tune_malloc": "ruvector._malloc",
    "GATLayer": "ruvector.attention.graph",
    "GINLayer": "ruvector.attention.graph",
    "SAGELayer": "ruvector.attention.graph",
    "AttentionGNNLayer": "ruvector.graph.gnn",
    "GNN": "ruvector.graph.gnn",
    "AttentionalPooling": "ruvector.graph.gnn",
    "subgraph_embedding": "ruvector.graph.gnn",
    "GraphStore": "ruvector.graph.store",
    "VectorStore": "ruvector.index.store",
    "AttentionReranker": "ruvector.index.rerank",
    "AttentionDistance": "ruvector.index.distance",
    **{name: "ruvector.attention.training" for name in (
        "SGD", "Adam", "AdamW", "StepLR", "CosineLR", "LinearWarmup", "clip_grad_norm", "EWC",
        "save_checkpoint", "load_checkpoint")},
}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ruvector' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["__version__", "RuvectorError", "InvalidInput", "DimensionMismatch", "InvalidConfig",
           "NotFound", "StorageError", "CorruptFile", "LockedError", "QueryError",
           "QuerySyntaxError", "QueryLimitExceeded", *_LAZY]
