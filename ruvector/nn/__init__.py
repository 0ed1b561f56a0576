"""Module base and basic layers."""
from .layers import LayerNorm, Linear
from .module import Module

__all__ = ["Module", "Linear", "LayerNorm"]
