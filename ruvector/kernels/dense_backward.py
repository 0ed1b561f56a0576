"""Backward of the fused scaled dot-product attention (flash-attention style).

Recomputing P from the forward's saved ``lse``, with ``delta_i = rowsum(dO_i * O_i)``:

    dV_t += P^T dO,  dP = dO V_t^T,  dS = P * (dP - delta),
    dQ += scale dS K_t,  dK_t += scale dS^T Q.

Tasks are (batch, head, query chunk, key chunk); each query chunk owns a private dK/dV
accumulator and each key chunk a private dQ part (summed at the end of the call), so no two
workers ever write the same memory.  Layouts, masks, dropout bits, tiles and panels are those of
:mod:`.dense` (whose helpers this module uses); query tiles here have ``QB_BWD`` rows,
fewer than the forward's, because the backward's scratch holds more tiles.
"""
import math

import numpy as np
from numba import njit, prange

from ._math import FASTMATH, dot
from . import _isa
from ._simd import ACCUMULATE, EXP_NO_SUMS, EXP_SHIFTED, GRAD_SOFTMAX, MR, NVEC, claim_next, \
    tile_multiple
from .dense import (KT, ROWS_MIN, _drop, _exp_shifted, _key_range, _mask_scores, _pack_columns,
                    _pack_scaled, _panel_product, _panel_width, _row_scores, _scaled_copy,
                    _tile, _tile_needs_mask, task_coords)

# query rows per backward tile: whole micro-tile rows and columns, about as many as keep a
# tile's scratch (~375 KB for D = 64 at 192 rows) in L2
QB_BWD = tile_multiple(math.lcm(MR, NVEC * _isa.lanes(4)), 192)


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _grad_scores(P, G, wide, delta):
    """G <- dS = P (G - delta[r]) where G holds dP (layout as in _mask_scores)."""
    if wide:
        for c in range(G.shape[0]):
            for r in range(G.shape[1]):
                G[c, r] = P[c, r] * (G[c, r] - delta[r])
    else:
        for r in range(G.shape[0]):
            for c in range(G.shape[1]):
                G[r, c] = P[r, c] * (G[r, c] - delta[r])


@njit(cache=True, fastmath=FASTMATH, inline="always")
def _row_grads(P, G, Qs, dO, K, dQ, dk, dv, assign):
    """The three products of a narrow tile (P, G = dS: rows x keys) in one pass over its keys
    c, each key row read once: dv_c (=/+=) sum_r P_rc dO_r, dk_c (=/+=) sum_r G_rc Qs_r,
    dQ_r += G_rc K_c.  With ``assign`` (the first contribution to these dk / dv rows) they
    are written, not accumulated, so they need no zeroing first."""
    nq, nk = P.shape
    for c in range(nk):
        dvc, dkc, kc = dv[c], dk[c], K[c]
        for r in range(nq):
            p, g = P[r, c], G[r, c]
            if assign and r == 0:
                for w in range(dvc.shape[0]):
                    dvc[w] = p * dO[0, w]
                for d in range(dkc.shape[0]):
                    dkc[d] = g * Qs[0, d]
            else:
                for w in range(dvc.shape[0]):
                    dvc[w] += p * dO[r, w]
                for d in range(dkc.shape[0]):
                    dkc[d] += g * Qs[r, d]
            for d in range(kc.shape[0]):
                dQ[r, d] += g * kc[d]


@njit(cache=True, inline="always")
def _zero_rows(dk, dv, r0, r1):
    """dk[r0:r1] = dv[r0:r1] = 0."""
    for r in range(r0, r1):
        dk[r, :] = 0
        dv[r, :] = 0


@njit(cache=True, fastmath=FASTMATH)
def _backward_task(q, k, v, do, lse, o, mask, has_mask, causal, window, scale, drop_p, seed,
                   b, h, i0, i1, j0, j1, dq, dk, dv, qtbuf, qsbuf, dotbuf, dobuf, kpbuf, pbuf,
                   gbuf, dqbuf, cstate, first):
    """Gradient contributions of query rows i0:i1 and keys j0:j1 of (b, h): writes dq (this
    key range's part), adds into dk / dv (this query chunk's (Lk, D) / (Lk, Dv) sums).
    The ``first`` query block of a chunk writes dk / dv rows j0:j1 instead of adding to
    them (a wide tile zeroes each key tile just before its first use, while it is about to
    be in cache anyway; a narrow one assigns in :func:`_row_grads`).  delta_i = dO_i . O_i
    is computed here from ``o``, the forward's output.

    Wide tiles (at least ROWS_MIN rows) hold P^T and dS^T (keys x queries) and run every
    product through gemm_block (unmasked ones take P^T = exp(S^T - lse) straight from the
    product's epilogue; without dropout, dS^T = P^T (dP^T - delta) comes from the dP^T
    product's epilogue, written over P^T); narrow ones work row by row.  ``cstate``: the
    column state of _simd in segments of min(QB_BWD, Lq): (delta, shift = lse, sums).  The
    P^T product uses no column maxima, so the first segment holds delta, which the dS^T
    product reads as its shift (passing a segment length of 0).  As in the forward, the
    queries of a wide tile are cut into panels one micro-tile wide where they divide evenly:
    (scale Q)^T and dO^T, the B operands of the P^T and dP^T products, are packed in panels
    (P^T and dS^T themselves stay row-major: the dV and dK products read their rows).  The
    B operands of the dV, dQ and dK products, dO, K_t and scale Q, are packed in panels of
    columns (:func:`_pack_columns`; K_t once per key tile).
    """
    H, Lq, Lk = q.shape[1], q.shape[2], k.shape[2]
    D, Dv = q.shape[3], v.shape[3]
    kf, vf = k.reshape(-1), v.reshape(-1)
    dkf, dvf = dk.reshape(-1), dv.reshape(-1)
    kb0 = (b * H + h) * Lk * D
    vb0 = (b * H + h) * Lk * Dv
    nq = i1 - i0
    wide = nq >= ROWS_MIN
    Qs = _tile(qsbuf, nq, D)
    dO = do[b, h, i0:i1]
    width = _panel_width(qtbuf, nq, wide)
    npan = nq // width
    wd, wv = _panel_width(qtbuf, D, wide), _panel_width(qtbuf, Dv, wide)  # column panels
    if wide:
        _pack_scaled(q[b, h, i0:i1], scale, qtbuf, width)
        _pack_scaled(dO, do.dtype.type(1), dotbuf, width)
        _pack_columns(q[b, h, i0:i1], scale, qsbuf, wd)
        _pack_columns(dO, do.dtype.type(1), dobuf, wv)
    else:
        _scaled_copy(q[b, h, i0:i1], scale, Qs)
    dQ = _tile(dqbuf, nq, D)
    dQ[:, :] = 0
    qr = cstate.shape[0] // 3
    dstate, shift, sums = cstate[:qr], cstate[qr:2 * qr], cstate[2 * qr:]
    for r in range(nq):  # rows without any key have lse = -inf and P = exp(S - inf) = 0
        li = lse[b, h, i0 + r]
        shift[r] = li if li != -np.inf else np.inf
        dstate[r] = dot(dO[r], o[b, h, i0 + r])
    fused_ds = wide and drop_p == 0  # dS^T from the dP^T product's epilogue, over P^T
    dsbuf = pbuf if fused_ds else gbuf
    jstart, jend = _key_range(i0, i1, j0, j1, causal, window)
    if first:  # rows this block never reaches
        _zero_rows(dk, dv, j0, max(j0, min(jstart, j1)))
        _zero_rows(dk, dv, max(jstart, jend), j1)
    for jt in range(jstart, jend, KT):
        je = min(jt + KT, jend)
        nk = je - jt
        if first and wide:
            _zero_rows(dk, dv, jt, je)
        masked = _tile_needs_mask(has_mask, causal, window, i0, i1, jt, je)
        if wide:  # P^T = exp(S^T - lse), in the epilogue when no entry needs a mask
            P, G = _tile(pbuf, nk, nq), _tile(gbuf, nk, nq)
            _panel_product(pbuf, width, nq, kf, kb0 + jt * D, D, 1, qtbuf, nk, D, width, npan,
                           0 if masked else EXP_SHIFTED | EXP_NO_SUMS, cstate, qr)
        else:
            P, G = _tile(pbuf, nq, nk), _tile(gbuf, nq, nk)
            _row_scores(Qs, k[b, h, jt:je], P)
        if masked:
            _mask_scores(P, wide, mask, has_mask, causal, window, b, h, i0, jt)
        if masked or not wide:
            _exp_shifted(P, wide, shift, sums)  # P = exp(S - lse)
        pzbuf = pbuf
        if drop_p > 0 and wide:         # dV uses P Z / (1 - p): the weights that met V
            G[:, :] = P
            _drop(G, wide, seed, b, h, i0, jt, H, Lq, Lk, drop_p)
            pzbuf = gbuf
        if wide:   # dV_t += P^T dO;  dP^T = V_t dO^T (or dS^T = P^T (dP^T - delta) over P^T)
            _panel_product(dvf[jt * Dv:], wv, Dv, pzbuf, 0, nq, 1, dobuf, nk, nq, wv, Dv // wv,
                           ACCUMULATE, shift, 0)
            _panel_product(dsbuf, width, nq, vf, vb0 + jt * Dv, Dv, 1, dotbuf, nk, Dv, width,
                           npan, GRAD_SOFTMAX if fused_ds else 0, dstate, 0)
        else:
            _row_scores(dO, v[b, h, jt:je], G)
        if drop_p > 0:
            _drop(G, wide, seed, b, h, i0, jt, H, Lq, Lk, drop_p)
        if not fused_ds:
            _grad_scores(P, G, wide, dstate)
        if wide:   # dQ += dS K_t;  dK_t += dS^T (scale Q)
            _pack_columns(k[b, h, jt:je], k.dtype.type(1), kpbuf, wd)
            _panel_product(dqbuf, wd, D, dsbuf, 0, 1, nq, kpbuf, nq, nk, wd, D // wd,
                           ACCUMULATE, shift, 0)
            _panel_product(dkf[jt * D:], wd, D, dsbuf, 0, nq, 1, qsbuf, nk, nq, wd, D // wd,
                           ACCUMULATE, shift, 0)
        else:
            if drop_p > 0:  # P is spent: it becomes the weights that met V
                _drop(P, wide, seed, b, h, i0, jt, H, Lq, Lk, drop_p)
            _row_grads(P, G, Qs, dO, k[b, h, jt:je], dQ, dk[jt:je], dv[jt:je], first)
    for r in range(nq):
        for d in range(D):
            dq[r, d] = dQ[r, d] * scale


def backward_scratch_size(D, Dv, Lq):
    """float scratch per worker for the backward: Q^T, Q, dO^T, dO, K_t, P, dP/dS, dQ and the
    column state (delta, shift, sums) of _simd (for tiles of min(QB_BWD, Lq) query rows)."""
    qr = min(QB_BWD, Lq)
    return 3 * qr * D + 2 * qr * Dv + KT * D + 2 * KT * qr + 3 * qr


# query chunk boundaries fall on multiples of the micro-kernel's rows and float32 columns
CHUNK_ALIGN = math.lcm(MR, NVEC * _isa.lanes(4))


@njit(cache=True, inline="always")
def _chunk_start(c, nqc, Lq, causal):
    """First query row of chunk c of nqc (Lq for c = nqc); see :func:`chunk_rows`."""
    if c >= nqc:
        return Lq
    x = Lq * np.sqrt(c / nqc) if causal else Lq * c / nqc
    return min(Lq, int(np.floor(x / CHUNK_ALIGN + 0.5)) * CHUNK_ALIGN)


@njit(cache=True)
def chunk_rows(qc, nqc, Lq, causal):
    """Query rows [r0, r1) of query chunk qc of nqc: boundaries Lq c / nqc, or for causal
    attention (row i sees about i keys, so the first r rows hold ~r^2 of the work)
    Lq sqrt(c / nqc), which give every chunk about the same work; each rounded to the
    nearest multiple of CHUNK_ALIGN (the last ends at Lq).  Chunks are cut in rows, not in
    whole query tiles, so that two chunks of L = 4096 get 2064 and 2032 rows, not 2112 and
    1984.  With nqc <= ceil(Lq / QB_BWD) (as the caller picks it) every gap before rounding
    is at least CHUNK_ALIGN <= 96 (Lq / nqc >= QB_BWD = 192; causal: the last,
    Lq (1 - sqrt(1 - 1 / nqc)) >= Lq / (2 nqc) >= 96), so no chunk is empty."""
    return _chunk_start(qc, nqc, Lq, causal), _chunk_start(qc + 1, nqc, Lq, causal)


@njit(cache=True)
def _backward_worker(w, q, k, v, do, lse, o, mask, has_mask, causal, window, scale, drop_p,
                     seed, nqc, nkc, dq, dk, dv, fscratch, counter):
    B, H, Lq = q.shape[0], q.shape[1], q.shape[2]
    Lk, D, Dv = k.shape[2], q.shape[3], v.shape[3]
    buf = fscratch[w]
    sc = buf.dtype.type(scale)
    qr = min(QB_BWD, Lq)
    n0 = qr * D
    n1 = n0 + qr * D
    n2 = n1 + qr * Dv
    n3 = n2 + KT * qr
    n4 = n3 + KT * qr
    n5 = n4 + qr * D
    n6 = n5 + qr * Dv
    n7 = n6 + KT * D
    qtbuf, qsbuf, dotbuf, pbuf, gbuf, dqbuf = (buf[:n0], buf[n0:n1], buf[n1:n2], buf[n2:n3],
                                               buf[n3:n4], buf[n4:n5])
    dobuf, kpbuf = buf[n5:n6], buf[n6:n7]
    cstate = buf[n7:n7 + 3 * qr]
    kchunk = (Lk + nkc - 1) // nkc
    ntasks = B * H * nqc * nkc
    t = claim_next(counter)
    while t < ntasks:
        b, h, qc, kc = task_coords(t, H, nqc, nkc)
        j0 = kc * kchunk
        j1 = min(j0 + kchunk, Lk)
        r0, r1 = chunk_rows(qc, nqc, Lq, causal)
        for i0 in range(r0, r1, QB_BWD):
            i1 = min(i0 + QB_BWD, r1)
            _backward_task(q, k, v, do, lse, o, mask, has_mask, causal, window, sc, drop_p,
                           seed, b, h, i0, i1, j0, j1, dq[kc, b, h, i0:i1], dk[qc, b, h],
                           dv[qc, b, h], qtbuf, qsbuf, dotbuf, dobuf, kpbuf, pbuf, gbuf,
                           dqbuf, cstate, i0 == r0)
        t = claim_next(counter)


@njit(cache=True, fastmath=FASTMATH)
def fold_parts(parts):
    """parts[0] += parts[1] + ... + parts[-1] (the per-chunk partials of one gradient)."""
    first = parts[0].reshape(-1)
    for c in range(1, parts.shape[0]):
        part = parts[c].reshape(-1)
        for x in range(first.shape[0]):
            first[x] += part[x]


@njit(cache=True, parallel=True)
def backward_parallel(q, k, v, do, lse, o, mask, has_mask, causal, window, scale, drop_p, seed,
                      nqc, nkc, dq, dk, dv, fscratch, counter):
    """Backward over W = len(fscratch) workers.

    Tasks are (batch, head, query chunk, key chunk): dq (nkc, B, H, Lq, D) holds one part per
    key chunk, dk / dv (nqc, B, H, Lk, D) one partial sum per query chunk (all written,
    so they may start uninitialised); the parts are then summed into dq[0], dk[0] and dv[0].
    counter: int64[1], the shared task counter (reset here).  ``scale`` is converted to the
    array dtype.
    """
    counter[0] = 0
    for w in prange(fscratch.shape[0]):
        _backward_worker(w, q, k, v, do, lse, o, mask, has_mask, causal, window, scale,
                         drop_p, seed, nqc, nkc, dq, dk, dv, fscratch, counter)
    fold_parts(dq)
    fold_parts(dk)
    fold_parts(dv)


@njit(cache=True)
def backward_serial(q, k, v, do, lse, o, mask, has_mask, causal, window, scale, drop_p, seed,
                    nqc, nkc, dq, dk, dv, fscratch, counter):
    """Single-threaded backward (same tasks as :func:`backward_parallel`)."""
    counter[0] = 0
    _backward_worker(0, q, k, v, do, lse, o, mask, has_mask, causal, window, scale,
                     drop_p, seed, nqc, nkc, dq, dk, dv, fscratch, counter)
    fold_parts(dq)
    fold_parts(dk)
    fold_parts(dv)
