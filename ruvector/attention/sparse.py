"""Sparse attention: masks (dense, COO, block-sparse, windowed, strided) as CSR patterns,
and :class:`SparseAttention`, whose cost is proportional to the allowed (query, key) pairs.

    out_i = sum_{j in N(i)} softmax_j(scale q_i . k_j) v_j      (N(i): the keys row i allows)

A row without keys gives zeros.  Patterns (True = may attend; ``causal`` adds j <= i):

- ``WindowedMask(window, global_tokens=())``: |i - j| <= window; a global token attends to
  every key and every query attends to it (Longformer, Beltagy et al. 2020).
- ``StridedMask(window, stride)``: |i - j| <= window or (i - j) % stride == 0 (local plus
  strided, Child et al. 2019).
- ``BlockSparseMask(block_size, active_blocks)``: the (query block, key block) pairs listed
  (pairs or a boolean block matrix).
- ``COOMask(rows, cols, shape)``, ``DenseMask(mask)``.

``to_dense(Lq, Lk)`` and ``to_csr(Lq, Lk, causal=False)`` give the boolean matrix and the
(indptr, indices) rows; CSR patterns are cached per shape.

Execution: a plain window runs on the tiled dense kernels restricted to the band; a strided
pattern is the band plus dense attention inside each residue class, merged by log-sum-exp;
block-sparse masks with blocks >= 16 run as batched dense tiles over each query block's
gathered key blocks; global tokens add their pairs outside the band through the CSR
kernels, merged by log-sum-exp; other patterns run on the CSR kernels of
:mod:`ruvector.kernels.sparse`; top-k scores blocks of query rows with BLAS and keeps each
row's k best.
"""
import numpy as np

from .._threads import blas_single_thread
from .._validate import as_bool_mask, check_finite, finite_number, index_array, integer
from ..errors import DimensionMismatch, InvalidConfig, InvalidInput
from ..kernels.csr import csr_order
from ..nn.module import Module
from .functional import attention_backward, attention_forward, prepare_inputs, restore_rank

MAX_LENGTH = 2**31 - 1  # bound of windows, strides, blocks and k (int64 positions in kernels)


def _csr_from_pairs(rows, cols, Lq):
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    keep = np.ones(len(rows), bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    indptr, _ = csr_order(rows[keep], Lq)      # rows are sorted: only the offsets are needed
    return indptr, cols[keep].astype(np.int64)


class SparseMask:
    """Base: subclasses build CSR rows in ``_build(Lq, Lk)``; causal filtering and caching
    are shared."""

    def __init__(self):
        self._csr = {}

    def _check_shape(self, Lq, Lk):
        pass

    def to_csr(self, Lq, Lk, causal=False):
        self._check_shape(Lq, Lk)
        key = (Lq, Lk, bool(causal))
        if key not in self._csr:
            indptr, indices = self._build(Lq, Lk, bool(causal))
            self._csr[key] = (indptr, indices)
        return self._csr[key]

    def _build(self, Lq, Lk, causal):
        indptr, indices = self._pattern(Lq, Lk)
        if not causal:
            return indptr, indices
        rows = np.repeat(np.arange(Lq), np.diff(indptr))
        keep = indices <= rows
        return _csr_from_pairs(rows[keep], indices[keep], Lq)

    def nnz(self, Lq, Lk, causal=False):
        return int(self.to_csr(Lq, Lk, causal)[0][-1])

    def to_dense(self, Lq, Lk, causal=False):
        indptr, indices = self.to_csr(Lq, Lk, causal)
        out = np.zeros((Lq, Lk), bool)
        out[np.repeat(np.arange(Lq), np.diff(indptr)), indices] = True
        return out


class DenseMask(SparseMask):
    def __init__(self, mask):
        super().__init__()
        self.mask = as_bool_mask(mask)
        if self.mask.ndim != 2:
            raise DimensionMismatch(f"DenseMask needs a 2-D (Lq, Lk) mask, got {self.mask.shape}")

    def _check_shape(self, Lq, Lk):
        if self.mask.shape != (Lq, Lk):
            raise DimensionMismatch(f"mask {self.mask.shape} does not match ({Lq}, {Lk})")

    def _pattern(self, Lq, Lk):
        rows, cols = np.nonzero(self.mask)
        return _csr_from_pairs(rows, cols, Lq)


class COOMask(SparseMask):
    def __init__(self, rows, cols, shape):
        super().__init__()
        try:
            self.shape = tuple(integer(s, "shape", maximum=MAX_LENGTH) for s in shape)
        except TypeError:
            self.shape = ()
        if len(self.shape) != 2:
            raise InvalidConfig(f"shape must be (Lq, Lk), got {shape!r}")
        self.rows = index_array(rows, "rows", size=self.shape[0])
        self.cols = index_array(cols, "cols", size=self.shape[1])
        if self.rows.shape != self.cols.shape:
            raise DimensionMismatch(f"rows {self.rows.shape} and cols {self.cols.shape} differ")

    def _check_shape(self, Lq, Lk):
        if self.shape != (Lq, Lk):
            raise DimensionMismatch(f"COO mask of shape {self.shape} does not match ({Lq}, {Lk})")

    def _pattern(self, Lq, Lk):
        return _csr_from_pairs(self.rows, self.cols, Lq)


class BlockSparseMask(SparseMask):
    """``active_blocks``: iterable of (query block, key block) pairs, or a boolean (nqb, nkb)
    block matrix."""

    def __init__(self, block_size, active_blocks):
        super().__init__()
        self.block_size = integer(block_size, "block_size", maximum=MAX_LENGTH)
        if self.block_size == 0:
            raise InvalidConfig("block_size must be >= 1")
        try:
            arr = np.asarray(active_blocks)
        except ValueError:  # ragged pairs
            arr = np.asarray(active_blocks, dtype=object)
        if arr.dtype == bool and arr.ndim == 2:
            pairs = np.argwhere(arr)
        elif arr.size == 0:
            pairs = np.zeros((0, 2), np.int64)
        else:
            if arr.ndim != 2 or (arr.size and arr.shape[1] != 2):
                raise InvalidInput("active_blocks must be (query block, key block) pairs or a "
                                   f"boolean block matrix, got shape {arr.shape}")
            pairs = index_array(arr, "active_blocks").reshape(-1, 2)
        self.blocks = np.unique(pairs, axis=0) if len(pairs) else np.zeros((0, 2), np.int64)

    def _check_shape(self, Lq, Lk):
        bs = self.block_size
        nqb, nkb = -(-Lq // bs), -(-Lk // bs)
        if len(self.blocks) and (self.blocks[:, 0].max() >= nqb or self.blocks[:, 1].max() >= nkb):
            raise InvalidInput(f"block indices out of range: {nqb} x {nkb} blocks of {bs} for "
                               f"({Lq}, {Lk}), largest listed {tuple(self.blocks.max(axis=0))}")

    def _pattern(self, Lq, Lk):
        bs = self.block_size
        rows, cols = [], []
        for qb, kb in self.blocks:
            r = np.arange(qb * bs, min((qb + 1) * bs, Lq))
            c = np.arange(kb * bs, min((kb + 1) * bs, Lk))
            rows.append(np.repeat(r, len(c)))
            cols.append(np.tile(c, len(r)))
        if not rows:
            return np.zeros(Lq + 1, np.int64), np.zeros(0, np.int64)
        return _csr_from_pairs(np.concatenate(rows), np.concatenate(cols), Lq)


class WindowedMask(SparseMask):
    def __init__(self, window, global_tokens=()):
        super().__init__()
        self.window = integer(window, "window", maximum=MAX_LENGTH)
        try:
            tokens = list(global_tokens)
        except TypeError:
            raise InvalidInput(f"global_tokens must be positions, got {global_tokens!r}") from None
        self.global_tokens = np.unique(index_array(tokens, "global_tokens"))

    def _check_shape(self, Lq, Lk):
        if len(self.global_tokens) and self.global_tokens.max() >= max(Lq, Lk):
            raise InvalidInput(f"global token {int(self.global_tokens.max())} is outside "
                               f"the sequence ({Lq} queries, {Lk} keys)")

    def _band(self, Lq, Lk, causal, window, stride):
        from ..kernels.sparse import band_csr
        is_global = np.zeros(Lq, np.bool_)
        is_global[self.global_tokens[self.global_tokens < Lq]] = True
        cols = self.global_tokens[self.global_tokens < Lk]
        return band_csr(Lq, Lk, window, stride, causal, is_global, cols)

    def _build(self, Lq, Lk, causal):
        return self._band(Lq, Lk, causal, self.window, 0)


class StridedMask(WindowedMask):
    def __init__(self, window, stride):
        super().__init__(window)
        self.stride = integer(stride, "stride", maximum=MAX_LENGTH)
        if self.stride == 0:
            raise InvalidConfig("stride must be >= 1")

    def _build(self, Lq, Lk, causal):
        return self._band(Lq, Lk, causal, self.window, self.stride)


class SparseAttention(Module):
    """Attention restricted to a sparse pattern; inputs (L, D), (B, L, D) or (B, H, L, D)
    (the pattern is shared by every batch and head).  ``backward(grad_out)`` returns
    (dq, dk, dv) of the last forward (top-k: gradients through the kept entries)."""

    def __init__(self, scale=None, causal=False, dtype=np.float32):
        super().__init__(dtype)
        self.scale = None if scale is None else finite_number(scale, "scale", nonzero=True)
        self.causal = bool(causal)
        self._ctx = None

    # -- patterns --------------------------------------------------------------------------------
    def forward_sparse(self, q, k, v, mask):
        """Any :class:`SparseMask` (or a boolean (Lq, Lk) array, taken as a DenseMask)."""
        if not isinstance(mask, SparseMask):
            mask = DenseMask(mask)
        return self._run(q, k, v, mask)

    def forward_windowed(self, q, k, v, window, global_tokens=()):
        return self._run(q, k, v, WindowedMask(window, global_tokens))

    def forward_strided(self, q, k, v, window, stride):
        return self._run(q, k, v, StridedMask(window, stride))

    def forward_block_sparse(self, q, k, v, mask):
        if not isinstance(mask, BlockSparseMask):
            raise InvalidConfig("forward_block_sparse needs a BlockSparseMask")
        return self._run(q, k, v, mask)

    def forward_topk(self, q, k, v, top_k):
        """Each query attends to its ``top_k`` highest-scoring keys only (ties: any of
        them); only the kept keys' values are read."""
        prep = prepare_inputs(q, k, v, dtype=self.dtype)
        q4, k4, v4 = prep.q, prep.k, prep.v
        B, H, Lq, D = q4.shape
        Lk = k4.shape[2]
        top_k = integer(top_k, "k", maximum=MAX_LENGTH)
        if not 1 <= top_k <= Lk:
            raise InvalidInput(f"k={top_k} must be in [1, {Lk}] (the number of keys)")
        G = B * H
        qg, kg, vg = (a.reshape(G, -1, a.shape[-1]) for a in (q4, k4, v4))
        idx = _topk_indices(qg, kg, top_k)                     # (G, Lq, k)
        scale = 1.0 / np.sqrt(D) if self.scale is None else float(self.scale)
        gi = np.arange(G)[:, None, None]
        ks, vs = kg[gi, idx], vg[gi, idx]                      # (G, Lq, k, D)
        check_finite(vs, "value")        # the only values read: those of the kept keys
        s = scale * np.einsum("gid,gikd->gik", qg, ks, dtype=np.float64)
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        out = np.einsum("gik,gikd->gid", p, vs).astype(q4.dtype)
        self._ctx = ("topk", prep, (qg, kg, vg, idx, p, scale))
        return restore_rank(out.reshape(B, H, Lq, -1), prep.rank, prep.lead)

    # -- engine ----------------------------------------------------------------------------------
    def _run(self, q, k, v, mask):
        prep = prepare_inputs(q, k, v, dtype=self.dtype)
        q4, k4, v4 = prep.q, prep.k, prep.v
        B, H, Lq, D = q4.shape
        Lk, Dv = k4.shape[2], v4.shape[3]
        scale = 1.0 / np.sqrt(D) if self.scale is None else float(self.scale)
        if type(mask) is WindowedMask and not len(mask.global_tokens):
            # A plain band: the tiled dense kernels visit only the key tiles that meet it,
            # and their NaN/Inf check covers every key some band reaches; the rest is
            # checked here.
            last = Lq - 1 + (0 if self.causal else mask.window)
            if Lk > last + 1:
                check_finite(k4[:, :, last + 1:], "key")
                check_finite(v4[:, :, last + 1:], "value")
            out4, ctx, finite = attention_forward(q4, k4, v4, None, self.causal, scale,
                                                  window=mask.window)
            if not finite:
                _check_finite(prep)             # names the bad input, or: overflow
                out4, ctx, _ = attention_forward(*(a.astype(np.float64) for a in (q4, k4, v4)),
                                                 None, self.causal, scale, window=mask.window)
                out4 = out4.astype(q4.dtype)
            self._ctx = ("band", prep, (ctx,))
            return restore_rank(out4, prep.rank, prep.lead)
        if type(mask) is BlockSparseMask and mask.block_size >= BLOCK_TILE_MIN:
            _check_finite(prep)
            mask.to_csr(Lq, Lk, self.causal)            # validates the block indices
            out4, saved = _block_forward(q4, k4, v4, mask, self.causal, scale)
            self._ctx = ("block", prep, saved)
            return restore_rank(out4, prep.rank, prep.lead)
        if type(mask) is WindowedMask:               # a band plus global tokens
            _check_finite(prep)
            mask.to_csr(Lq, Lk, self.causal)            # validates the token positions
            out4, saved = _global_forward(q4, k4, v4, mask, self.causal, scale)
            self._ctx = ("global", prep, saved)
            return restore_rank(out4, prep.rank, prep.lead)
        if type(mask) is StridedMask:
            _check_finite(prep)
            out4, saved = _strided_forward(q4, k4, v4, mask.window, mask.stride, self.causal,
                                           scale)
            self._ctx = ("strided", prep, saved)
            return restore_rank(out4, prep.rank, prep.lead)
        _check_finite(prep)
        indptr, indices = mask.to_csr(Lq, Lk, self.causal)
        (qg, kg, vg), out, lse = _csr_forward(q4, k4, v4, indptr, indices, scale)
        self._ctx = ("csr", prep, (qg, kg, vg, out, lse, indptr, indices, scale))
        return restore_rank(out.reshape(B, H, Lq, Dv), prep.rank, prep.lead)

    def backward(self, grad_out):
        if self._ctx is None:
            raise InvalidConfig("SparseAttention.backward called before a forward")
        kind, prep, saved = self._ctx
        B, H, Lq, _ = prep.q.shape
        G, Dv = B * H, prep.v.shape[3]
        g = np.ascontiguousarray(grad_out, dtype=prep.q.dtype)
        if g.size != G * Lq * Dv:
            raise DimensionMismatch(f"grad_out has {g.shape}, expected the output's shape")
        if kind == "band":
            ctx = saved[0]
            grads = [a.astype(prep.q.dtype) for a in
                     attention_backward(ctx, g.reshape(B, H, Lq, Dv).astype(ctx.q.dtype))]
        elif kind == "block":
            grads = _block_backward(saved, g.reshape(B, H, Lq, Dv).astype(prep.q.dtype))
        elif kind == "global":
            grads = _global_backward(saved, g.reshape(B, H, Lq, Dv).astype(prep.q.dtype))
        elif kind == "strided":
            grads = _strided_backward(saved, g.reshape(B, H, Lq, Dv))
        elif kind == "csr":
            grads = _csr_backward(saved, g.reshape(G, Lq, Dv))
        else:
            grads = _topk_backward(saved, g.reshape(G, Lq, Dv))
        shapes = (prep.q.shape, prep.k.shape, prep.v.shape)
        return tuple(restore_rank(x.reshape(s), prep.rank, prep.lead)
                     if prep.rank != 1 or i == 0 else x.reshape(s[2:])
                     for i, (x, s) in enumerate(zip(grads, shapes)))


def _csr_forward(q4, k4, v4, indptr, indices, scale):
    """CSR kernel forward over (B*H) groups: ((qg, kg, vg), out (G, Lq, Dv), lse (G, Lq))."""
    from ..kernels import sparse as kern
    G, Lq = q4.shape[0] * q4.shape[1], q4.shape[2]
    groups = tuple(a.reshape(G, -1, a.shape[-1]) for a in (q4, k4, v4))
    out = np.empty((G, Lq, v4.shape[3]), q4.dtype)
    lse = np.empty((G, Lq))
    with blas_single_thread():
        kern.forward(*groups, indptr, indices, scale, out, lse)
    return groups, out, lse


def _check_finite(prep):
    for name, arr in zip(("query", "key", "value"), prep.originals):
        check_finite(arr, name)


def _csr_backward(saved, g):
    from ..kernels import sparse as kern
    qg, kg, vg, out, lse, indptr, indices, scale = saved
    G, Lq, D = qg.shape
    Lk = kg.shape[1]
    delta = np.einsum("gid,gid->gi", g, out, dtype=np.float64)
    rows = np.repeat(np.arange(Lq), np.diff(indptr))
    indptr_t, order = csr_order(indices, Lk)
    dq, dk, dv = np.empty_like(qg), np.empty_like(kg), np.empty_like(vg)
    with blas_single_thread():
        kern.backward(qg, kg, vg, g, lse, delta, indptr, indices, indptr_t, rows[order],
                      scale, dq, dk, dv)
    return dq, dk, dv


TOPK_BLOCK_SCORES = 1 << 22
BLOCK_TILE_MIN = 16              # block-sparse masks with blocks this large use dense tiles      # scores held at once by forward_topk (query rows x keys)


def _topk_indices(qg, kg, top_k):
    """(G, Lq, top_k) indices of each query's highest-scoring keys: scores of a block of
    query rows at a time by BLAS (at most TOPK_BLOCK_SCORES floats), then a partial sort.
    A non-finite score (NaN/Inf in a query or key) raises InvalidInput."""
    G, Lq, _ = qg.shape
    Lk = kg.shape[1]
    rows = max(1, TOPK_BLOCK_SCORES // Lk)
    idx = np.empty((G, Lq, top_k), np.int64)
    for g in range(G):
        for r0 in range(0, Lq, rows):
            St = kg[g] @ qg[g, r0:r0 + rows].T            # (Lk, rows): a tall BLAS product
            if not np.isfinite(St.sum()) and not np.isfinite(St).all():
                for name, arr in (("query", qg), ("key", kg)):
                    check_finite(arr, name)
                raise InvalidInput("scores overflow: query and key entries are too large")
            idx[g, r0:r0 + rows] = np.argpartition(St, Lk - top_k, axis=0)[Lk - top_k:].T
    return idx


def _topk_backward(saved, g):
    qg, kg, vg, idx, p, scale = saved
    G = qg.shape[0]
    gi = np.arange(G)[:, None, None]
    ks, vs = kg[gi, idx].astype(np.float64), vg[gi, idx].astype(np.float64)
    dp = np.einsum("gid,gikd->gik", g, vs)
    ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))
    dq = scale * np.einsum("gik,gikd->gid", ds, ks)
    dk = np.zeros(kg.shape)
    dv = np.zeros(vg.shape)
    np.add.at(dk, (gi, idx), scale * ds[..., None] * qg[:, :, None, :])
    np.add.at(dv, (gi, idx), p[..., None] * g[:, :, None, :])
    return dq.astype(qg.dtype), dk.astype(kg.dtype), dv.astype(vg.dtype)


# -- strided pattern = band + residue classes ---------------------------------------------------
def _merge(o1, l1, o2, l2):
    """Softmax over the union of two disjoint key sets from the parts' outputs and
    log-sum-exps: lse = logaddexp(l1, l2), out = e^(l1-lse) o1 + e^(l2-lse) o2."""
    lse = np.logaddexp(l1, l2)
    safe = np.where(np.isfinite(lse), lse, 0.0)
    a1 = np.where(np.isfinite(l1), np.exp(l1 - safe), 0.0)[..., None]
    a2 = np.where(np.isfinite(l2), np.exp(l2 - safe), 0.0)[..., None]
    return (a1 * o1 + a2 * o2).astype(o1.dtype), lse.astype(l1.dtype)


def _residue_positions(L, stride):
    """(stride, ceil(L/stride)) positions r + stride t, clipped to L - 1, and their validity."""
    n = -(-L // stride)
    pos = np.arange(stride)[:, None] + stride * np.arange(n)[None, :]
    return np.minimum(pos, L - 1), pos < L


def _strided_forward(q4, k4, v4, window, stride, causal, scale):
    """|i - j| <= window runs on the band kernels; (i - j) % stride == 0 outside the band is,
    for each residue class r, dense attention among positions r + stride t (a small mask:
    |t_q - t_k| > window // stride, causal t_k <= t_q); the parts merge by log-sum-exp."""
    B, H, Lq, D = q4.shape
    Lk, Dv = k4.shape[2], v4.shape[3]
    band_out, band_ctx, _ = attention_forward(q4, k4, v4, None, causal, scale, window=window)
    pq, vq = _residue_positions(Lq, stride)
    pk, vk = _residue_positions(Lk, stride)
    tq, tk = np.arange(pq.shape[1])[:, None], np.arange(pk.shape[1])[None, :]
    allow = np.abs(tq - tk) > window // stride
    if causal:
        allow &= tk <= tq
    mask = allow[None, :, :] & vq[:, :, None] & vk[:, None, :]          # (stride, nq, nk)
    mask = np.tile(mask[:, None], (B, 1, 1, 1))                          # (B*stride, 1, ..)
    qs, ks, vs = _gathered(q4, pq), _gathered(k4, pk), _gathered(v4, pk)
    res_out, res_ctx, _ = attention_forward(qs, ks, vs, mask, False, scale)
    # back to positions (padded query rows are dropped)
    rows = res_out.reshape(B, stride, H, -1, Dv).transpose(0, 2, 1, 3, 4)
    res_lse = res_ctx.lse.reshape(B, stride, H, -1).transpose(0, 2, 1, 3)
    o2 = np.zeros((B, H, Lq, Dv), q4.dtype)
    l2 = np.full((B, H, Lq), -np.inf)
    o2[:, :, pq[vq]] = rows[:, :, vq]
    l2[:, :, pq[vq]] = res_lse[:, :, vq]
    out, lse = _merge(band_out, band_ctx.lse.astype(np.float64), o2, l2)
    return out, (band_ctx, res_ctx, out, lse, pq, vq, pk, vk, stride)


def _strided_backward(saved, g4):
    """Flash backward of each part with the merged output and log-sum-exp (P_ij =
    exp(s_ij - lse_i) over the union), gradients of the residue part scattered back."""
    from dataclasses import replace
    band_ctx, res_ctx, out, lse, pq, vq, pk, vk, stride = saved
    B, H, Lq, Dv = out.shape
    dt = band_ctx.q.dtype
    g4 = g4.astype(dt)
    dq, dk, dv = attention_backward(replace(band_ctx, out=out, lse=lse.astype(dt)), g4)
    lse_g = _gathered(lse[..., None], pq)[..., 0].astype(dt)
    rq, rk, rv = attention_backward(replace(res_ctx, out=_gathered(out, pq), lse=lse_g),
                                    _gathered(g4, pq))

    def scatter(acc, part, pos, valid):
        part = part.reshape(B, stride, H, pos.shape[1], -1).transpose(0, 2, 1, 3, 4)
        acc[:, :, pos[valid]] += part[:, :, valid]        # valid positions are distinct
    dq, dk, dv = dq.copy(), dk.copy(), dv.copy()
    scatter(dq, rq, pq, vq)
    scatter(dk, rk, pk, vk)
    scatter(dv, rv, pk, vk)
    return dq, dk, dv


# -- block-sparse pattern = batched dense tiles ----------------------------------------------------
def _block_groups(mask, Lq, Lk, causal):
    """Query blocks grouped by how many key blocks they list: [(query blocks (n,), key
    blocks (n, m), element mask or None)]; the mask is only built where a group needs one
    (a causal diagonal, or a partial last block)."""
    bs = mask.block_size
    nqb = -(-Lq // bs)
    lists = [[] for _ in range(nqb)]
    for qb, kb in mask.blocks:
        lists[qb].append(int(kb))
    groups = {}
    for qb, kbs in enumerate(lists):
        if kbs:
            groups.setdefault(len(kbs), []).append(qb)
    out = []
    for m, qbs in sorted(groups.items()):
        qbs = np.asarray(qbs, np.int64)
        kbs = np.asarray([lists[qb] for qb in qbs], np.int64)                  # (n, m)
        pos = (kbs[:, :, None] * bs + np.arange(bs)).reshape(len(qbs), m * bs)
        rows = qbs[:, None] * bs + np.arange(bs)[None, :]                       # (n, bs)
        allowed = None
        if (pos >= Lk).any() or (causal and (pos[:, None, :] > rows[:, :, None]).any()):
            allowed = np.broadcast_to((pos < Lk)[:, None, :], (len(qbs), bs, m * bs))
            if causal:
                allowed = allowed & (pos[:, None, :] <= rows[:, :, None])
        out.append((qbs, kbs, np.minimum(pos, Lk - 1), allowed))
    return out


def _block_forward(q4, k4, v4, mask, causal, scale):
    """Each query block attends to its listed key blocks, gathered side by side: one batched
    dense call per group of query blocks with equally long lists (no padding; an element mask
    only where a causal diagonal or a partial block needs it)."""
    B, H, Lq, D = q4.shape
    Lk, Dv = k4.shape[2], v4.shape[3]
    bs = mask.block_size
    nqb = -(-Lq // bs)
    qpad = np.zeros((B, H, nqb * bs, D), q4.dtype)
    qpad[:, :, :Lq] = q4
    out = np.zeros((B, H, nqb * bs, Dv), q4.dtype)
    saved = []
    for qbs, kbs, pos, allowed in _block_groups(mask, Lq, Lk, causal):
        n = len(qbs)
        qg = _blocks(qpad, qbs, bs)                                       # (B*n, H, bs, D)
        kg, vg = _gathered(k4, pos), _gathered(v4, pos)                   # (B*n, H, m*bs, X)
        m4 = None if allowed is None else np.tile(allowed[:, None], (B, 1, 1, 1))
        og, ctx, _ = attention_forward(qg, kg, vg, m4, False, scale)
        out.reshape(B, H, nqb, bs, Dv)[:, :, qbs] = og.reshape(B, n, H, bs, Dv).transpose(
            0, 2, 1, 3, 4)
        saved.append((ctx, qbs, kbs))
    return np.ascontiguousarray(out[:, :, :Lq]), (saved, nqb, bs, Lq, Lk)


def _blocks(x, qbs, bs):
    """Rows of the listed blocks of x (B, H, L, X) as (B * n, H, bs, X)."""
    B, H, _, X = x.shape
    blocks = x.reshape(B, H, -1, bs, X)[:, :, qbs]                        # (B, H, n, bs, X)
    return np.ascontiguousarray(blocks.transpose(0, 2, 1, 3, 4).reshape(B * len(qbs), H, bs, X))


def _gathered(x, pos):
    """x[:, :, pos] for pos (n, m) as (B * n, H, m, X)."""
    B, H, _, X = x.shape
    g = x[:, :, pos]
    return np.ascontiguousarray(g.transpose(0, 2, 1, 3, 4).reshape(B * pos.shape[0], H,
                                                                   pos.shape[1], X))


def _block_backward(saved, g4):
    groups, nqb, bs, Lq, Lk = saved
    B, H, _, Dv = g4.shape
    dt = groups[0][0].q.dtype if groups else g4.dtype
    D = groups[0][0].q.shape[3] if groups else 0
    gpad = np.zeros((B, H, nqb * bs, Dv), dt)
    gpad[:, :, :Lq] = g4
    dq = np.zeros((B, H, nqb * bs, D), dt)
    dk = np.zeros((B, H, Lk, D), dt)
    dv = np.zeros((B, H, Lk, Dv), dt)
    for ctx, qbs, kbs in groups:
        n, m = kbs.shape
        dqg, dkg, dvg = attention_backward(ctx, _blocks(gpad, qbs, bs))
        dq.reshape(B, H, nqb, bs, D)[:, :, qbs] = dqg.reshape(B, n, H, bs, D).transpose(
            0, 2, 1, 3, 4)
        dkg = dkg.reshape(B, n, H, m, bs, D)
        dvg = dvg.reshape(B, n, H, m, bs, Dv)
        for i in range(n):                      # key blocks repeat across query blocks
            for s_, kb in enumerate(kbs[i]):
                lo, hi = kb * bs, min((kb + 1) * bs, Lk)
                dk[:, :, lo:hi] += dkg[:, i, :, s_, :hi - lo]
                dv[:, :, lo:hi] += dvg[:, i, :, s_, :hi - lo]
    return np.ascontiguousarray(dq[:, :, :Lq]), dk, dv


# -- windowed pattern with global tokens = band + the few pairs outside it ---------------------
def _outside_band_csr(Lq, Lk, window, tokens, causal):
    """CSR rows of the global-token pairs outside the band |i - j| <= window: every key of a
    global query row, and the global keys of every other row."""
    rows, cols = [], []
    is_global = np.zeros(Lq, bool)
    is_global[tokens[tokens < Lq]] = True
    keys = tokens[tokens < Lk]
    if len(keys):
        r = np.repeat(np.flatnonzero(~is_global), len(keys))
        c = np.tile(keys, int((~is_global).sum()))
        rows.append(r)
        cols.append(c)
    for i in np.flatnonzero(is_global):
        c = np.arange(Lk)
        rows.append(np.full(Lk, i))
        cols.append(c)
    if not rows:
        return np.zeros(Lq + 1, np.int64), np.zeros(0, np.int64)
    r, c = np.concatenate(rows), np.concatenate(cols)
    keep = np.abs(r - c) > window
    if causal:
        keep &= c <= r
    return _csr_from_pairs(r[keep], c[keep], Lq)


def _global_forward(q4, k4, v4, mask, causal, scale):
    """Band on the tiled kernels, the pairs outside it on the CSR kernels, merged by
    log-sum-exp (both parts' backward later run against the merged output and lse)."""
    B, H, Lq, D = q4.shape
    Lk, Dv = k4.shape[2], v4.shape[3]
    band_out, band_ctx, _ = attention_forward(q4, k4, v4, None, causal, scale,
                                              window=mask.window)
    indptr, indices = _outside_band_csr(Lq, Lk, mask.window, mask.global_tokens, causal)
    _, rest, rest_lse = _csr_forward(q4, k4, v4, indptr, indices, scale)
    out, lse = _merge(band_out, band_ctx.lse.astype(np.float64), rest.reshape(B, H, Lq, Dv),
                      rest_lse.reshape(B, H, Lq))
    return out, (band_ctx, out, lse, indptr, indices, scale)


def _global_backward(saved, g4):
    from dataclasses import replace
    band_ctx, out, lse, indptr, indices, scale = saved
    B, H, Lq, Dv = out.shape
    dt = band_ctx.q.dtype
    dq, dk, dv = attention_backward(replace(band_ctx, out=out, lse=lse.astype(dt)), g4)
    G = B * H
    rest = (band_ctx.q.reshape(G, Lq, -1), band_ctx.k.reshape(G, band_ctx.k.shape[2], -1),
            band_ctx.v.reshape(G, band_ctx.v.shape[2], -1), out.reshape(G, Lq, Dv),
            lse.reshape(G, Lq), indptr, indices, scale)
    rq, rk, rv = _csr_backward(rest, g4.reshape(G, Lq, Dv))
    return dq + rq.reshape(dq.shape), dk + rk.reshape(dk.shape), dv + rv.reshape(dv.shape)
