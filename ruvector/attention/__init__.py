"""Attention mechanisms: scaled dot-product, multi-head (self and cross), sparse patterns
(windowed, strided, block, top-k, any CSR mask) and attention on curved manifolds."""
from .functional import scaled_dot_product_attention
from .geometric import HyperbolicAttention, MixedCurvatureAttention, SphericalAttention
from .manifolds import Euclidean, Manifold, PoincareBall, ProductManifold, Sphere
from .multihead import MultiHeadAttention
from .scaled_dot import ScaledDotProductAttention
from .sparse import (BlockSparseMask, COOMask, DenseMask, SparseAttention, SparseMask,
                     StridedMask, WindowedMask)

__all__ = ["ScaledDotProductAttention", "MultiHeadAttention", "scaled_dot_product_attention",
           "SparseAttention", "SparseMask", "DenseMask", "COOMask", "BlockSparseMask",
           "WindowedMask", "StridedMask", "HyperbolicAttention", "SphericalAttention",
           "MixedCurvatureAttention", "Manifold", "PoincareBall", "Sphere", "Euclidean",
           "ProductManifold"]
