"""Graph structures and GNN layers."""
from .csr import CSRGraph

__all__ = ["CSRGraph"]
