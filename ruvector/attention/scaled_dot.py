"""ScaledDotProductAttention: the fused kernel as a (parameter-free) Module."""
import numpy as np

from .._deprecated import renamed
from .._validate import as_array, finite_number, positive_int, probability
from ..errors import DimensionMismatch
from ..nn.module import Module, make_rng
from . import functional as F


class ScaledDotProductAttention(Module):
    """Attention(Q, K, V) = softmax(scale * Q K^T, masked) V  (Vaswani et al. 2017).

    Parameters
    ----------
    scale : float, optional
        Logit scale; default ``1/sqrt(D)`` with D the key width.
    causal : bool
        Query i attends to keys j <= i (top-left aligned when Lq != Lk).
    dropout : float
        Dropout probability on the attention weights, active only in training mode
        (``train()``); the keep mask comes from a counter-based hash of a seed drawn from
        ``seed``, so the backward recomputes it.
    max_keys : int
        Cap on keys per call; more raises InvalidInput.

    ``forward(query, key, value, mask=None, need_weights=False)`` accepts a query
    (D,), (Lq, D), (B, Lq, D) or (B, H, Lq, D) with key/value of the same leading shape
    ((Lk, D) for a single query); values may have another width Dv.  ``mask`` is boolean,
    True = may attend, broadcastable to the logits shape (..., Lq, Lk).  A query row with no
    allowed key returns zeros.  Returns the output (query's rank, last dim Dv), plus the
    weights (..., Lq, Lk) when ``need_weights``.  float64 input is converted to the
    module's dtype (float32 by default).
    """

    def __init__(self, scale=None, causal=False, dropout=0.0, *, seed=None,
                 max_keys=F.DEFAULT_MAX_KEYS, dtype=np.float32):
        super().__init__(dtype)
        self.scale = None if scale is None else finite_number(scale, "scale", nonzero=True)
        self.causal = bool(causal)
        self.dropout = probability(dropout, "dropout")
        self.max_keys = positive_int(max_keys, "max_keys")
        self._rng = make_rng(seed)
        self._weights = None
        self._cache = None

    @renamed(keys="key", values="value", return_weights="need_weights")
    def forward(self, query, key, value, mask=None, need_weights=False):
        drop = self.dropout if self.training else 0.0
        seed = int(self._rng.integers(2**62)) if drop > 0 else 0
        out, weights, (ctx, prep) = F.sdpa_with_context(
            query, key, value, mask, causal=self.causal, scale=self.scale,
            need_weights=need_weights, dtype=self.dtype, max_keys=self.max_keys,
            drop_p=drop, seed=seed)
        self._cache = (ctx, prep)
        if need_weights:
            self._weights = weights
            return out, weights
        return out

    __call__ = forward

    @renamed(queries="query", keys="key", values="value")
    def forward_batch(self, query, key, value, mask=None):
        """Batched forward: query (B, Lq, D), key (B, Lk, D), value (B, Lk, Dv)."""
        q = np.asarray(query)
        if q.ndim != 3:
            raise DimensionMismatch(f"query must be (B, Lq, D), got shape {q.shape}")
        return self.forward(q, key, value, mask)

    def get_attention_weights(self):
        """Weights of the last forward that asked for them (None before any)."""
        return self._weights

    def backward(self, grad_output):
        """Gradients (d_query, d_key, d_value) of the last forward, in the inputs' shapes."""
        ctx, prep = self._require_cache(self._cache)
        expected = F.restore_rank(ctx.out, prep.rank, prep.lead).shape
        g = as_array(grad_output, "grad_output", dtype=self.dtype, allow_empty=True)
        if g.shape != expected:
            raise DimensionMismatch(
                f"grad_output {g.shape} does not match the output shape {expected}")
        g4 = g.reshape(ctx.out.shape).astype(ctx.q.dtype, copy=False)
        dq, dk, dv = F.attention_backward(ctx, g4)
        q_shape, k_shape, v_shape = (a.shape for a in prep.originals)
        return tuple(x.reshape(s).astype(self.dtype, copy=False)
                     for x, s in ((dq, q_shape), (dk, k_shape), (dv, v_shape)))
