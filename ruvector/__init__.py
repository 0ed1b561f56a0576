"""ruvector: vector search, graph stores and attention, Numba-accelerated.

Importing the package is cheap: the numeric modules (and Numba) load on first use of a
name below, and kernels compile lazily (cached on disk) on their first call.
"""
from importlib import import_module

from .errors import (CorruptFile, DimensionMismatch, ExportError, InvalidConfig, InvalidInput,
                     LockedError, MissingDependency, NotAStore, NotFound, QueryError,
                     QueryLimitExceeded, QuerySyntaxError, RuvectorError, StorageError)

from . import _deprecated

__version__ = "0.1.0"
_deprecated.install()

_LAZY = {
    "ScaledDotProductAttention": "ruvector.attention.scaled_dot",
    "MultiHeadAttention": "ruvector.attention.multihead",
    "scaled_dot_product_attention": "ruvector.attention.functional",
    "Module": "ruvector.nn.module",
    "Linear": "ruvector.nn.layers",
    "LayerNorm": "ruvector.nn.layers",
    "tune_malloc": "ruvector._malloc",
    "SparseAttention": "ruvector.attention",
    "HyperbolicAttention": "ruvector.attention",
    "SphericalAttention": "ruvector.attention",
    "MixedCurvatureAttention": "ruvector.attention",
    "CSRGraph": "ruvector.nn",
    **{name: "ruvector.gnn" for name in (
        "GATLayer", "GINLayer", "SAGELayer", "AttentionGNNLayer", "GNN", "AttentionalPooling",
        "subgraph_embedding")},
    "GraphStore": "ruvector.graph",
    "GraphArrays": "ruvector.graph",
    "VectorStore": "ruvector.index.store",
    "AttentionReranker": "ruvector.index.rerank",
    "AttentionDistance": "ruvector.index.distance",
    **{name: "ruvector.training" for name in (
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
           "NotFound", "StorageError", "NotAStore", "CorruptFile", "LockedError", "QueryError",
           "QuerySyntaxError", "QueryLimitExceeded", "MissingDependency", "ExportError", *_LAZY]
