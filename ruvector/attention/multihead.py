"""MultiHeadAttention (self and cross attention) with forward and backward."""
import numpy as np

from .._validate import all_finite, as_array, as_bool_mask, positive_int, probability
from ..errors import DimensionMismatch, InvalidConfig, InvalidInput
from ..nn.matmul import matmul, matmul_tn
from ..nn.module import Module, glorot_uniform, make_rng
from ..nn.onnx_graph import axes, example_arrays
from . import functional as F
from .scaled_dot import mask_axes, onnx_attention
from ..kernels import heads as KH


def _split_heads(x, heads, bias=None):
    """(B, L, H*dh) -> (B, H, L, dh), contiguous, plus ``bias`` (H*dh,) when given."""
    B, L, d = x.shape
    out = np.empty((B, heads, L, d // heads), x.dtype)
    has_bias = bias is not None
    KH.split_heads(np.ascontiguousarray(x), bias.astype(x.dtype, copy=False) if has_bias
                   else np.zeros(0, x.dtype), has_bias, out)
    return out


def _merge_heads(x):
    """(B, H, L, dh) -> (B, L, H*dh), contiguous."""
    B, H, L, dh = x.shape
    out = np.empty((B, L, H * dh), x.dtype)
    KH.merge_heads(np.ascontiguousarray(x), out)
    return out


def _rows(x):
    return x.reshape(-1, x.shape[-1])


class MultiHeadAttention(Module):
    """Multi-head attention (Vaswani et al. 2017), PyTorch-compatible parameter layout.

        Q = x_q W_q + b_q,  K = x_k W_k + b_k,  V = x_v W_v + b_v      (split into H heads)
        head_h = softmax(Q_h K_h^T / sqrt(d_model / H), masked) V_h
        out = concat_h(head_h) W_o + b_o

    Parameters (``parameters()``): ``w_q (d_model, d_model)``, ``w_k (kdim, d_model)``,
    ``w_v (vdim, d_model)``, ``w_o (d_model, d_model)`` and, with ``bias``, ``b_q b_k b_v b_o
    (d_model,)``.  Weights are Glorot-uniform from ``seed``, biases zero.  (PyTorch's
    ``in_proj_weight`` rows are these matrices transposed.)

    ``forward(query, key, value, mask=None, need_weights=False, average_weights=True)``:
    query (Lq, d_model) or (B, Lq, d_model) (or a single (d_model,) vector), key
    (.., Lk, kdim), value (.., Lk, vdim).  ``mask`` is boolean (True = may attend), broadcastable to (B, Lq, Lk),
    or (B, H, Lq, Lk) for a per-head mask.  Returns the output in the query's shape and,
    with ``need_weights``, the weights averaged over heads (B, Lq, Lk) (before dropout), or
    per head (B, H, Lq, Lk) with ``average_weights=False`` (no B for an unbatched query).

    ``backward(grad_output)`` returns ``(grad_query, grad_key, grad_value)`` and accumulates
    the parameter gradients into ``grads``; for self-attention with one tensor, add the
    three.  Dropout on the attention weights is active only in training mode, with keep
    masks drawn from a generator seeded by ``seed``.

    float32 inputs whose projections overflow are recomputed in float64; an output that
    cannot be represented in float32 raises InvalidInput (use ``dtype=np.float64``).
    """

    def __init__(self, d_model, num_heads, *, bias=True, kdim=None, vdim=None, dropout=0.0,
                 causal=False, seed=None, max_keys=F.DEFAULT_MAX_KEYS, dtype=np.float32):
        super().__init__(dtype)
        self.d_model = positive_int(d_model, "d_model")
        self.num_heads = positive_int(num_heads, "num_heads")
        if self.d_model % self.num_heads:
            raise InvalidConfig(
                f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}")
        self.head_dim = self.d_model // self.num_heads
        self.kdim = positive_int(kdim if kdim is not None else d_model, "kdim")
        self.vdim = positive_int(vdim if vdim is not None else d_model, "vdim")
        self.dropout = probability(dropout, "dropout")
        self.causal = bool(causal)
        self.bias = bool(bias)
        self.max_keys = positive_int(max_keys, "max_keys")
        rng = make_rng(seed)
        d = self.d_model
        for name, fan_in in (("w_q", d), ("w_k", self.kdim), ("w_v", self.vdim), ("w_o", d)):
            self._register(name, glorot_uniform(rng, fan_in, d))
        if self.bias:
            for name in ("b_q", "b_k", "b_v", "b_o"):
                self._register(name, np.zeros(d))
        self._dropout_rng = np.random.default_rng(rng.integers(2**62))
        self._cache = None

    # -- forward ----------------------------------------------------------------------------
    def _inputs(self, query, key, value):
        q = as_array(query, "query", dtype=self.dtype, ndim=(1, 2, 3))
        # self-attention passes one array three times: convert and check it once
        k = q if key is query and q.ndim > 1 else as_array(key, "key", dtype=self.dtype,
                                                           ndim=(2, 3))
        v = k if value is key else as_array(value, "value", dtype=self.dtype, ndim=(2, 3))
        rank = q.ndim
        q3 = q.reshape((1,) * (3 - rank) + q.shape)
        want = 3 if rank == 3 else 2
        for name, arr in (("key", k), ("value", v)):
            if arr.ndim != want:
                raise DimensionMismatch(f"{name} {arr.shape} must have rank {want} to go with "
                                        f"query {q.shape}")
        k3, v3 = (a.reshape((1,) * (3 - a.ndim) + a.shape) for a in (k, v))
        for name, arr, width in (("query", q3, self.d_model), ("key", k3, self.kdim),
                                 ("value", v3, self.vdim)):
            if arr.shape[-1] != width:
                raise DimensionMismatch(
                    f"{name} width {arr.shape[-1]} != {width} expected by the layer "
                    f"(query {q.shape}, key {k.shape}, value {v.shape})")
        if not (q3.shape[0] == k3.shape[0] == v3.shape[0]):
            raise DimensionMismatch(
                f"batch sizes differ: query {q.shape}, key {k.shape}, value {v.shape}")
        if k3.shape[1] != v3.shape[1]:
            raise DimensionMismatch(f"key {k.shape} and value {v.shape} lengths differ")
        if k3.shape[1] > self.max_keys:
            raise InvalidInput(f"key holds {k3.shape[1]} keys, over max_keys={self.max_keys}")
        return q3, k3, v3, rank, q.shape

    def _mask4(self, mask, B, Lq, Lk):
        if mask is None:
            return None
        m = as_bool_mask(mask)
        try:
            if m.ndim == 4:
                return np.broadcast_to(m, (B, self.num_heads, Lq, Lk))
            return np.broadcast_to(m, (B, Lq, Lk))[:, None]
        except ValueError:
            raise DimensionMismatch(
                f"mask {m.shape} does not broadcast to (B, Lq, Lk) = {(B, Lq, Lk)} "
                f"or (B, H, Lq, Lk)") from None

    def _project(self, x, w, b):
        y = matmul(x, w)
        if b is not None:
            y += b
        return y

    def _run(self, q3, k3, v3, mask4, params, drop, seed):
        H = self.num_heads
        q4, k4, v4 = (_split_heads(matmul(x, params[w]), H, params.get(b))
                      for x, w, b in ((q3, "w_q", "b_q"), (k3, "w_k", "b_k"),
                                      (v3, "w_v", "b_v")))
        heads, ctx, finite = F.attention_forward(q4, k4, v4, mask4, self.causal, None, drop,
                                                 seed)
        merged = _merge_heads(heads)
        out = self._project(merged, params["w_o"], params.get("b_o"))
        return out, ctx, merged, finite and all_finite(out)

    def forward(self, query, key, value, mask=None, need_weights=False, average_weights=True):
        q3, k3, v3, rank, q_shape = self._inputs(query, key, value)
        mask4 = self._mask4(mask, q3.shape[0], q3.shape[1], k3.shape[1])
        drop = self.dropout if self.training else 0.0
        seed = int(self._dropout_rng.integers(2**62)) if drop > 0 else 0
        params = self._params
        inputs = (q3, k3, v3)
        with np.errstate(over="ignore", invalid="ignore"):
            out, ctx, merged, finite = self._run(q3, k3, v3, mask4, params, drop, seed)
        if not finite:  # the inputs are finite (checked): an overflow in float32
            params = {n: p.astype(np.float64) for n, p in self._params.items()}
            inputs = tuple(a.astype(np.float64) for a in inputs)
            out, ctx, merged, _ = self._run(*inputs, mask4, params, drop, seed)
            if np.abs(out).max() > np.finfo(self.dtype).max:
                raise InvalidInput(f"the output overflows {self.dtype}: inputs too large "
                                   "(use dtype=np.float64)")
        self._cache = (inputs, ctx, merged, params, rank, q_shape, k3.shape, v3.shape)
        out = out.astype(self.dtype, copy=False)
        out = out.reshape(q_shape[:-1] + (self.d_model,))
        if need_weights:
            w = F.attention_weights(ctx)
            w = (w.mean(axis=1) if average_weights else w).astype(self.dtype, copy=False)
            return out, (w[0] if rank < 3 else w)
        return out

    __call__ = forward

    # -- backward ---------------------------------------------------------------------------
    def backward(self, grad_output):
        """(grad_query, grad_key, grad_value) in the inputs' shapes; accumulates ``grads``."""
        inputs, ctx, merged, params, rank, q_shape, k_shape, v_shape = \
            self._require_cache(self._cache)
        q3, k3, v3 = inputs
        g = as_array(grad_output, "grad_output", dtype=self.dtype, allow_empty=True)
        expected = q_shape[:-1] + (self.d_model,)
        if g.shape != expected:
            raise DimensionMismatch(f"grad_output {g.shape} does not match the output {expected}")
        g = g.reshape(q3.shape[:2] + (self.d_model,)).astype(merged.dtype, copy=False)
        self._accumulate("w_o", "b_o", merged, g)
        g_merged = matmul(g, params["w_o"].T)
        H = self.num_heads
        dq, dk, dv = F.attention_backward(ctx, _split_heads(g_merged, H))
        grads_in = []
        for x, d, (w, b) in ((q3, dq, ("w_q", "b_q")), (k3, dk, ("w_k", "b_k")),
                             (v3, dv, ("w_v", "b_v"))):
            d3 = _merge_heads(d)
            self._accumulate(w, b, x, d3)
            grads_in.append(matmul(d3, params[w].T).astype(self.dtype, copy=False))
        gq, gk, gv = grads_in
        if rank < 3:
            gk, gv = gk[0], gv[0]
        return gq.reshape(q_shape), gk.reshape(gk.shape), gv.reshape(gv.shape)

    # -- ONNX export ------------------------------------------------------------------------
    def onnx_example(self):
        rng = np.random.default_rng(0)
        return (rng.standard_normal((2, 5, self.d_model)), rng.standard_normal((2, 6, self.kdim)),
                rng.standard_normal((2, 6, self.vdim)))

    def onnx_inputs(self, examples):
        """query (batch, q_len, d_model), key (batch, k_len, kdim), value (batch, k_len,
        vdim), or the same without the batch axis; optionally a boolean mask broadcastable
        to (batch, q_len, k_len) or (batch, heads, q_len, k_len)."""
        if len(examples) not in (3, 4):
            raise InvalidInput("example inputs are (query, key, value) or (query, key, "
                               "value, mask)")
        arrays = example_arrays(examples, ["float"] * 3 + ["bool"])
        lead = ["batch"] if arrays[0].ndim == 3 else []
        specs = [(name, axes(a, lead + [length, width], name)) for name, a, length, width in
                 (("query", arrays[0], "q_len", self.d_model),
                  ("key", arrays[1], "k_len", self.kdim),
                  ("value", arrays[2], "k_len", self.vdim))]
        for (name, dims), a in zip(specs, arrays):
            if dims[-1] != a.shape[-1]:
                raise DimensionMismatch(f"{name} {a.shape} must end in width {dims[-1]}")
        if len(arrays) == 4:
            m = arrays[3]
            logits = ["batch", "heads", "q_len", "k_len"] if m.ndim == 4 else \
                ["batch", "q_len", "k_len"]
            specs.append(("mask", mask_axes(m, logits)))
        return specs, arrays

    def emit_onnx(self, g, query, key, value, mask=None):
        batched = len(g.shape(query)) == 3
        H, dh = self.num_heads, self.head_dim

        def heads(x, w, b):   # (B, L, in) -> (B, H, L, dh)
            if not batched:
                x = g.unsqueeze(x, [0])
            y = g.linear(x, g.param(w, getattr(self, w)),
                         g.param(b, getattr(self, b)) if self.bias else None)
            return g.op("Transpose", g.reshape(y, [0, 0, H, dh]), perm=[0, 2, 1, 3])

        q, k, v = heads(query, "w_q", "b_q"), heads(key, "w_k", "b_k"), heads(value, "w_v", "b_v")
        if mask is not None and len(g.shape(mask)) == 3:
            mask = g.unsqueeze(mask, [1])   # (B, Lq, Lk): the same for every head
        out = onnx_attention(g, q, k, v, mask, 1.0 / np.sqrt(dh), self.causal, 4)
        merged = g.reshape(g.op("Transpose", out, perm=[0, 2, 1, 3]), [0, 0, self.d_model])
        y = g.linear(merged, g.param("w_o", self.w_o),
                     g.param("b_o", self.b_o) if self.bias else None)
        return y if batched else g.squeeze(y, [0])

    def _accumulate(self, w_name, b_name, x, g):
        self._grads[w_name] += matmul_tn(x, g).astype(self.dtype, copy=False)
        if self.bias:
            self._grads[b_name] += _rows(g).sum(axis=0).astype(self.dtype, copy=False)
