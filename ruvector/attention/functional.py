"""Scaled dot-product attention on canonical 4-D arrays: drivers around the Numba kernels.

``attention_forward`` / ``attention_backward`` work on C-contiguous ``(B, H, L, D)`` arrays
of one float dtype (already validated); :func:`scaled_dot_product_attention` is the public,
validating entry point for any rank.

    Attention(Q, K, V) = softmax(scale * Q K^T + log M) V,   scale = 1/sqrt(D) by default,

where M is the boolean mask (True = may attend), combined with the causal mask
``j <= i`` (top-left aligned when Lq != Lk).  A query row with no allowed key returns 0.
"""
import math
import threading
from dataclasses import dataclass

import numpy as np

from .._threads import num_workers
from .._validate import (as_array, as_bool_mask, check_finite, finite_number, flag, integer,
                         require_same)
from ..errors import DimensionMismatch, InvalidInput
from ..kernels import dense, dense_backward

# Below this many multiply-adds (Lq*Lk*(D+Dv) summed over batch and heads) the serial kernel
# runs: a parallel launch saves little there (1 x 1000 keys, d = 128: 21 vs 25 us in the
# kernel), and the OpenMP workers it wakes keep spinning and slow the serial calls after it.
PARALLEL_MIN_WORK = 1 << 20
# The backward reads K and V and writes dK and dV (with a read for ownership of every line),
# so it is bound by memory traffic much sooner, and two cores move more of it
PARALLEL_MIN_WORK_BACKWARD = 1 << 16
DEFAULT_MAX_KEYS = 1 << 24

def compact_mask(mask, shape):
    """``mask`` (broadcastable to the 4-D ``shape``) as a read-only C-contiguous 4-D array
    whose axes are full or 1 (the kernels read axis n at index 0 when it is 1): broadcast
    axes are never copied out, and every mask reaches the kernels in one array type, so each
    kernel compiles once per dtype instead of once per mask layout."""
    m = np.broadcast_to(mask, shape)
    m = np.ascontiguousarray(m[tuple(slice(0, 1) if st == 0 else slice(None)
                                     for st in m.strides)]).view()
    m.flags.writeable = False
    return m


_NO_MASK = compact_mask(np.ones((1, 1, 1, 1), dtype=np.bool_), (1, 1, 1, 1))
_local = threading.local()


def _workspace(dtype, W, floats):
    """This thread's kernel workspace: (scratch (W, >= floats), poison (W,), counter (1,)).

    The kernels reset poison and the task counter themselves and use only a prefix of each
    scratch row, so one set per (dtype, W) serves every call of the thread, grown on demand:
    small calls (one query) skip three allocations.
    """
    cache = _local.__dict__.setdefault("workspaces", {})
    key = (dtype, W)
    ws = cache.get(key)
    if ws is None or ws[0].shape[1] < floats:
        ws = cache[key] = (np.empty((W, floats), dtype), np.zeros(W, dtype),
                           np.zeros(1, np.int64))
    return ws


@dataclass
class AttentionContext:
    """What the backward needs from a forward call (arrays in the compute dtype)."""
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    out: np.ndarray
    lse: np.ndarray
    mask: np.ndarray
    has_mask: bool
    causal: bool
    scale: float
    window: int
    drop_p: float
    seed: int


def _plan(B, H, Lq, Lk, D, Dv, min_work=None):
    """(parallel?, workers) for a problem size; problems under ``min_work`` multiply-adds
    (default: PARALLEL_MIN_WORK, read at call time) run serially."""
    if B * H * Lq * Lk * (D + Dv) < (PARALLEL_MIN_WORK if min_work is None else min_work):
        return False, 1
    W = num_workers()
    return W > 1, W


def attention_forward(q, k, v, mask=None, causal=False, scale=None, drop_p=0.0, seed=0,
                      window=-1):
    """Fused forward on 4-D arrays; returns ``(out (B,H,Lq,Dv), AttentionContext, finite)``.

    ``window >= 0`` restricts every query i to the band of keys |i - j| <= window (only the
    key tiles that meet the band are computed: the windowed fast path of sparse attention).

    ``mask`` is None or a boolean array broadcastable to (B, H, Lq, Lk).  The dtype of
    ``q`` is the compute dtype; ``lse`` (B, H, Lq) is saved for the backward.
    ``finite`` is False when a raw score, an output or a log-sum-exp was NaN/Inf: a
    non-finite input, or an overflow (see :func:`sdpa_with_context`).
    """
    B, H, Lq, D = q.shape
    Lk, Dv = k.shape[2], v.shape[3]
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    has_mask = mask is not None
    mask4 = compact_mask(mask, (B, H, Lq, Lk)) if has_mask else _NO_MASK
    parallel, W = _plan(B, H, Lq, Lk, D, Dv)
    nqb = -(-Lq // dense.QB_FWD)
    nkc = 1
    if parallel and B * H * nqb < W:
        nkc = min(-(-W // (B * H * nqb)), -(-Lk // dense.KT))
    kchunk = -(-Lk // nkc)
    out = np.empty((B, H, Lq, Dv), dtype=q.dtype)
    lse = np.empty((B, H, Lq), dtype=q.dtype)
    if nkc == 1:  # the tasks write the result directly
        parts, part_lse = out[None], lse[None]
    else:  # per-key-chunk partials, merged by log-sum-exp inside the kernel call
        parts = np.empty((nkc, B, H, Lq, Dv), dtype=q.dtype)
        part_lse = np.empty((nkc, B, H, Lq), dtype=q.dtype)
    scratch, poison, counter = _workspace(q.dtype, W, dense.forward_scratch_size(D, Dv, Lq))
    args = (q, k, v, mask4, has_mask, bool(causal), int(window), scale, float(drop_p),
            int(seed), nkc, kchunk, parts, part_lse, out, lse, scratch, poison, counter)
    poison_total = (dense.forward_parallel if parallel else dense.forward_serial)(*args)
    ctx = AttentionContext(q, k, v, out, lse, mask4, has_mask, bool(causal), scale,
                           int(window), float(drop_p), int(seed))
    return out, ctx, poison_total == 0.0


def attention_backward(ctx, dout):
    """Gradients (dQ, dK, dV) of a forward call given dL/dOut (B, H, Lq, Dv)."""
    q, k, v = ctx.q, ctx.k, ctx.v
    B, H, Lq, D = q.shape
    Lk, Dv = k.shape[2], v.shape[3]
    dout = np.ascontiguousarray(dout, dtype=q.dtype)
    parallel, W = _plan(B, H, Lq, Lk, D, Dv, PARALLEL_MIN_WORK_BACKWARD)
    nqb = -(-Lq // dense_backward.QB_BWD)
    nqc = nkc = 1
    if parallel and B * H < W:
        nqc = min(-(-W // (B * H)), nqb)
        if B * H * nqc < W:  # few query rows: split the keys too
            nkc = min(-(-W // (B * H * nqc)), -(-Lk // dense.KT))
    dq = np.empty((nkc, B, H, Lq, D), q.dtype)
    dk = np.empty((nqc, B, H, Lk, D), q.dtype)
    dv = np.empty((nqc, B, H, Lk, Dv), q.dtype)
    scratch, _, counter = _workspace(q.dtype, W, dense_backward.backward_scratch_size(D, Dv, Lq))
    args = (q, k, v, dout, ctx.lse, ctx.out, ctx.mask, ctx.has_mask, ctx.causal, ctx.window,
            ctx.scale, ctx.drop_p, ctx.seed, nqc, nkc, dq, dk, dv, scratch, counter)
    (dense_backward.backward_parallel if parallel else dense_backward.backward_serial)(*args)
    return dq[0], dk[0], dv[0]


def attention_weights(ctx):
    """Softmax weights (B, H, Lq, Lk) of a forward call (before dropout)."""
    q, k = ctx.q, ctx.k
    B, H, Lq, _ = q.shape
    out = np.empty((B, H, Lq, k.shape[2]), q.dtype)
    dense.attention_weights(q, k, ctx.lse, ctx.mask, ctx.has_mask, ctx.causal, ctx.window,
                            ctx.scale, out)
    return out


@dataclass
class Prepared:
    """Validated inputs in canonical 4-D form plus what is needed to restore the user's rank."""
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    mask: object
    rank: int
    lead: tuple
    originals: tuple  # (query, key, value) as converted, for error messages


def prepare_inputs(query, key, value, mask=None, *, dtype=np.float32,
                   max_keys=DEFAULT_MAX_KEYS):
    """Validate and reshape (D,) / (N, D) / (B, N, D) / (B, H, N, D) inputs to 4-D.

    A single query (D,) goes with keys (N, D); otherwise query, key and value share their
    leading dimensions.  Values may be wider or narrower than keys.
    """
    q = as_array(query, "query", dtype=dtype, ndim=(1, 2, 3, 4), allow_empty=True,
                 check=False)
    k = as_array(key, "key", dtype=dtype, ndim=(2, 3, 4), check=False)
    v = as_array(value, "value", dtype=dtype, ndim=(2, 3, 4), check=False)
    rank = q.ndim
    qx = q[None] if rank == 1 else q
    if k.ndim != qx.ndim:
        raise DimensionMismatch(
            f"key {k.shape} must have rank {qx.ndim} to go with query {q.shape}")
    require_same("query", qx.shape[:-2], "key", k.shape[:-2], "leading dimensions",
                 q.shape, k.shape)
    require_same("key", k.shape[:-1], "value", v.shape[:-1], "leading dimensions and lengths",
                 k.shape, v.shape)
    require_same("query", q.shape[-1], "key", k.shape[-1], "feature widths", q.shape, k.shape)
    Lk = k.shape[-2]
    if Lk > max_keys:
        raise InvalidInput(f"key holds {Lk} keys per call, over the limit max_keys={max_keys}")
    lead = qx.shape[:-2]
    expand = (None,) * (4 - qx.ndim)
    q4, k4, v4 = qx[expand], k[expand], v[expand]
    mask4 = None
    if mask is not None:
        m = as_bool_mask(mask)
        logits_shape = q.shape[:-1] + (Lk,)
        try:
            m = np.broadcast_to(m, logits_shape)
        except ValueError:
            raise DimensionMismatch(
                f"mask {m.shape} does not broadcast to the logits shape {logits_shape} "
                f"of query {q.shape} and key {k.shape}") from None
        if rank == 1:
            m = m[None]
        mask4 = m[expand]
    return Prepared(q4, k4, v4, mask4, rank, lead, (q, k, v))


def restore_rank(x4, rank, lead):
    """Inverse of the 4-D reshape of :func:`prepare_inputs` for an output (B, H, Lq, X)
    or weights (B, H, Lq, Lk): back to the query's rank."""
    if rank == 4:
        return x4
    if rank == 1:
        return x4[0, 0, 0]
    return x4.reshape(lead + x4.shape[-2:])


def _call_options(scale, max_keys, causal, need_weights):
    """The checked ``scale`` (None or a finite non-zero number), ``max_keys``, ``causal``
    and ``need_weights``."""
    if scale is not None:
        scale = finite_number(scale, "scale", nonzero=True, error=InvalidInput)
    return (scale, integer(max_keys, "max_keys", minimum=1, error=InvalidInput),
            flag(causal, "causal", error=InvalidInput),
            flag(need_weights, "need_weights", error=InvalidInput))


def _single_query(query, key, value, scale, dtype, max_keys):
    """Output (Dv,) of one query (D,) over keys (Lk, D) that arrive as C-contiguous arrays of
    ``dtype``, straight to :func:`dense.forward_one` (a single query is called in loops, and
    the general path's checks and reshapes cost about as much as its kernel).  None when
    the general path must run: another form, a conversion, a shape or size it rejects or
    runs in parallel, or a non-finite result (whose culprit it names, or whose overflow it
    recomputes in float64).  Same kernel and tiles as the general path: the same result."""
    nd = np.ndarray
    if not (type(query) is nd and type(key) is nd and type(value) is nd and query.ndim == 1
            and key.ndim == 2 and value.ndim == 2 and query.dtype.type is dtype
            and key.dtype.type is dtype and value.dtype.type is dtype
            and query.flags.c_contiguous and key.flags.c_contiguous
            and value.flags.c_contiguous):
        return None
    (D,), (Lk, Dk), (Lv, Dv) = query.shape, key.shape, value.shape
    if D != Dk or Lk != Lv or not 0 < Lk <= max_keys or D == 0 or Dv == 0 or \
            Lk * (D + Dv) >= PARALLEL_MIN_WORK:
        return None
    scale = 1.0 / math.sqrt(D) if scale is None else float(scale)
    out, poison = dense.forward_one(query, key, value, _NO_MASK, scale)
    return None if poison else out


def scaled_dot_product_attention(query, key, value, mask=None, *, causal=False, scale=None,
                                 need_weights=False, dtype=np.float32,
                                 max_keys=DEFAULT_MAX_KEYS):
    """softmax(scale * Q K^T masked) V for any accepted rank; see :func:`prepare_inputs`.

    Returns the output in the query's rank (last dim = value width) and, when
    ``need_weights``, the weights in the logits shape (..., Lq, Lk).
    """
    scale, max_keys, causal, need_weights = _call_options(scale, max_keys, causal, need_weights)
    if mask is None and not causal and not need_weights:
        out = _single_query(query, key, value, scale, dtype, max_keys)
        if out is not None:
            return out
    out, w, _ = sdpa_with_context(query, key, value, mask, causal=causal, scale=scale,
                                  need_weights=need_weights, dtype=dtype,
                                  max_keys=max_keys)
    return (out, w) if need_weights else out


def sdpa_with_context(query, key, value, mask=None, *, causal=False, scale=None,
                      need_weights=False, dtype=np.float32, max_keys=DEFAULT_MAX_KEYS,
                      drop_p=0.0, seed=0):
    """Validated forward returning ``(out, weights or None, (ctx, prepared))``.

    NaN/Inf inputs are found without an extra pass over memory: they make a raw score (query,
    key) or the output (value) non-finite, and only then are the inputs checked one by one to
    name the culprit (InvalidInput).  float32 inputs so large that scores or sums overflow
    (non-finite results from finite inputs) are recomputed in float64 and cast back; the
    output is bounded by max |value|, so it is finite.
    """
    scale, max_keys, causal, need_weights = _call_options(scale, max_keys, causal, need_weights)
    prep = prepare_inputs(query, key, value, mask, dtype=dtype, max_keys=max_keys)
    q, k, v = prep.q, prep.k, prep.v
    if causal and k.shape[2] > q.shape[2]:  # keys past the last query are never read
        check_finite(k[:, :, q.shape[2]:], "key")
        check_finite(v[:, :, q.shape[2]:], "value")
    out4, ctx, finite = attention_forward(q, k, v, prep.mask, causal, scale, drop_p, seed)
    if not finite:
        for name, arr in zip(("query", "key", "value"), prep.originals):
            check_finite(arr, name)
        q, k, v = (a.astype(np.float64) for a in (q, k, v))
        out4, ctx, _ = attention_forward(q, k, v, prep.mask, causal, scale, drop_p, seed)
    out = restore_rank(out4.astype(prep.q.dtype, copy=False), prep.rank, prep.lead)
    weights = None
    if need_weights:
        w4 = attention_weights(ctx).astype(prep.q.dtype, copy=False)
        weights = restore_rank(w4, prep.rank, prep.lead)
    return out, weights, (ctx, prep)
