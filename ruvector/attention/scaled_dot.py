"""ScaledDotProductAttention: the fused kernel as a (parameter-free) Module."""
import numpy as np

from .._deprecated import renamed
from .._validate import as_array, finite_number, positive_int, probability
from ..errors import DimensionMismatch, InvalidInput
from ..nn.module import Module, make_rng
from ..nn.onnx_graph import NEG_LARGE, axes, example_arrays
from . import functional as F


def onnx_attention(g, q, k, v, mask, scale, causal, rank):
    """softmax(scale q k^T, masked) v in ONNX for rank-``rank`` (..., L, D) tensors, as the
    kernels: the
    causal mask is top-left aligned (key j <= query i), a row with no allowed key gives
    zeros (masked logits become NEG_LARGE, and the weights are zeroed where masked)."""
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    s = g.op("Mul", g.op("MatMul", q, g.op("Transpose", k, perm=perm)), g.const(scale))
    if causal:
        rows = g.arange(g.dim(q, rank - 2))
        cols = g.arange(g.dim(k, rank - 2))
        allowed = g.op("LessOrEqual", g.unsqueeze(cols, [0]), g.unsqueeze(rows, [1]))
        mask = allowed if mask is None else g.op("And", mask, allowed)
    if mask is None:
        return g.op("MatMul", g.op("Softmax", s, axis=-1), v)
    s = g.op("Where", mask, s, g.const(NEG_LARGE))
    p = g.op("Where", mask, g.op("Softmax", s, axis=-1), g.const(0.0))
    return g.op("MatMul", p, v)


def mask_axes(mask, logits_axes):
    """ONNX dims of a boolean mask broadcast against logits with ``logits_axes``: the
    trailing axes, size-1 axes kept fixed at 1."""
    if not 1 <= mask.ndim <= len(logits_axes):
        raise DimensionMismatch(f"mask {mask.shape} must have rank 1 to {len(logits_axes)}")
    names = logits_axes[-mask.ndim:]
    return [1 if size == 1 else name for name, size in zip(names, mask.shape)]


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

    def onnx_example(self):
        rng = np.random.default_rng(0)
        return tuple(rng.standard_normal((2, 5, 8)) for _ in range(3))

    def onnx_inputs(self, examples):
        """query (..., Lq, D), key (..., Lk, D), value (..., Lk, Dv) of rank 2-4 (leading
        axes ``batch``, ``heads``), and optionally a boolean mask (..., Lq, Lk)."""
        if len(examples) not in (3, 4):
            raise InvalidInput("example inputs are (query, key, value) or (query, key, "
                               "value, mask)")
        arrays = example_arrays(examples, ["float"] * 3 + ["bool"])
        q = arrays[0]
        lead = ["batch", "heads"][:max(q.ndim - 2, 0)]
        if not 2 <= q.ndim <= 4:
            raise DimensionMismatch(f"query {q.shape} must have rank 2 to 4 to export")
        specs = [("query", axes(q, lead + ["q_len", None], "query")),
                 ("key", axes(arrays[1], lead + ["k_len", None], "key")),
                 ("value", axes(arrays[2], lead + ["k_len", None], "value"))]
        if len(arrays) == 4:
            specs.append(("mask", mask_axes(arrays[3], lead + ["q_len", "k_len"])))
        return specs, arrays

    def emit_onnx(self, g, query, key, value, mask=None):
        width = g.shape(query)[-1]
        scale = self.scale if self.scale is not None else 1.0 / np.sqrt(width)
        return onnx_attention(g, query, key, value, mask, scale, self.causal,
                              len(g.shape(query)))

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
