"""AttentionDistance: a learned similarity from attention projections."""
import numpy as np

from .._validate import as_array, positive_int
from ..errors import DimensionMismatch
from ..nn.module import Module, glorot_uniform, make_rng


class AttentionDistance(Module):
    """Learned similarity of attention (Vaswani et al. 2017) query/key projections.

        similarity(a, b) = (1/H) sum_h (a W_q^h) . (b W_k^h) / sqrt(p)
                         = a^T (W_q W_k^T) b / (H sqrt(p))
        distance(a, b)   = -similarity(a, b)

    with ``W_q``, ``W_k`` of shape (dim, H p) split into H blocks of p = ``proj_dim``
    columns (default ``dim``).  Parameters ``w_q``, ``w_k``; Glorot init from ``seed``.
    :meth:`identity` builds the projections under which the similarity is the plain dot
    product a . b.

    ``pairwise(A, B)`` (n, m) caches its inputs; ``backward(grad (n, m))`` returns
    ``(dA, dB)`` and accumulates ``grads``:

        P_a = A W_q, P_b = B W_k, S = c P_a P_b^T (c = 1/(H sqrt p)),
        dW_q = c A^T G P_b,  dW_k = c B^T G^T P_a,  dA = c G P_b W_q^T,  dB = c G^T P_a W_k^T
    """

    def __init__(self, dim, proj_dim=None, heads=1, seed=0, dtype=np.float32):
        super().__init__(dtype)
        self.dim = positive_int(dim, "dim")
        self.proj_dim = positive_int(proj_dim if proj_dim is not None else dim, "proj_dim")
        self.heads = positive_int(heads, "heads")
        rng = make_rng(seed)
        width = self.heads * self.proj_dim
        self._register("w_q", glorot_uniform(rng, self.dim, width))
        self._register("w_k", glorot_uniform(rng, self.dim, width))
        self._cache = None

    @classmethod
    def identity(cls, dim, dtype=np.float32):
        """Projections w_q = w_k = dim^(1/4) I: similarity(a, b) == a . b exactly."""
        d = cls(dim, dim, 1, seed=0, dtype=dtype)
        d.w_q[...] = np.eye(dim) * dim ** 0.25
        d.w_k[...] = np.eye(dim) * dim ** 0.25
        return d

    @property
    def _c(self):
        return 1.0 / (self.heads * np.sqrt(self.proj_dim))

    def _inputs(self, a, name):
        x = as_array(a, name, dtype=self.dtype, ndim=(1, 2))
        if x.shape[-1] != self.dim:
            raise DimensionMismatch(f"{name} {x.shape} must have width dim={self.dim}")
        return x

    def pairwise(self, A, B):
        """Similarity matrix (n, m) between the rows of A (n, dim) and B (m, dim)."""
        a2 = self._inputs(A, "A").reshape(-1, self.dim)
        b2 = self._inputs(B, "B").reshape(-1, self.dim)
        pa, pb = a2 @ self.w_q, b2 @ self.w_k
        self._cache = (a2, b2, pa, pb)
        return (pa @ pb.T) * self.dtype.type(self._c)

    forward = pairwise

    def similarity(self, a, b):
        """Row-wise similarity of a (n, dim) and b (n, dim) (or two vectors: a scalar)."""
        a2, b2 = self._inputs(a, "a"), self._inputs(b, "b")
        if a2.shape != b2.shape:
            raise DimensionMismatch(f"a {a2.shape} and b {b2.shape} must have the same shape")
        s = np.einsum("...i,...i->...", a2 @ self.w_q, b2 @ self.w_k) * self._c
        return s.astype(self.dtype, copy=False)

    def distance(self, a, b):
        """-similarity(a, b): smaller is closer."""
        return -self.similarity(a, b)

    def transform_queries(self, queries):
        """q~ = c W_k W_q^T q, so that similarity(q, x) = q~ . x (used by re-ranking)."""
        q = self._inputs(queries, "queries").reshape(-1, self.dim)
        return np.ascontiguousarray(((q @ self.w_q) @ self.w_k.T) * self._c, dtype=np.float32)

    def backward(self, grad):
        """Gradients (dA, dB) of the last :meth:`pairwise`; accumulates ``grads``."""
        a2, b2, pa, pb = self._require_cache(self._cache)
        g = as_array(grad, "grad", dtype=self.dtype, ndim=2)
        if g.shape != (a2.shape[0], b2.shape[0]):
            raise DimensionMismatch(f"grad {g.shape} must be {(a2.shape[0], b2.shape[0])}")
        c = self.dtype.type(self._c)
        d_pa, d_pb = (g @ pb) * c, (g.T @ pa) * c
        self._grads["w_q"] += a2.T @ d_pa
        self._grads["w_k"] += b2.T @ d_pb
        return d_pa @ self.w_q.T, d_pb @ self.w_k.T
