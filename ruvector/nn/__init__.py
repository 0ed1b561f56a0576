"""Module base and basic layers; CSRGraph, the edge layout the graph layers read."""
from .csr import CSRGraph
from .layers import LayerNorm, Linear
from .module import Module

__all__ = ["Module", "Linear", "LayerNorm", "CSRGraph"]
