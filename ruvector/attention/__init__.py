"""Attention mechanisms: scaled dot-product, multi-head (self and cross)."""
from .functional import scaled_dot_product_attention
from .multihead import MultiHeadAttention
from .scaled_dot import ScaledDotProductAttention

__all__ = ["ScaledDotProductAttention", "MultiHeadAttention", "scaled_dot_product_attention"]
