"""Gather + score kernels for re-ranking search candidates.

Candidates are slot numbers into the store's vector array (-1 = no candidate).  Vectors are
gathered row by row inside the kernel: no (Q, C, D) copy is ever built.

    attention:  w_i = softmax_i(-scale * d(q, x_{c_i}))   (d: the store's distance, from the
                search; the caller's scale folds in the temperature)
    learned:    w_i = softmax_i(scale * q' . x_{c_i})      (q': the transformed query; x / |x|
                for a normalising distance)
    MMR:        pick argmax_i (1 - lam) w_i / max w - lam max_{j picked} cos(x_i, x_j)
"""
import numpy as np
from numba import njit

from ._math import FASTMATH, dot
from .segment import softmax_range

# Where the logits come from (see _softmax_logits).
GATHER, GATHER_UNIT, FROM_DISTANCE = 0, 1, 2


@njit(cache=True, fastmath=FASTMATH)
def _softmax_logits(q, cand, dist, vectors, norms, source, scale, w):
    """w[i] = softmax over the valid candidates of the logits; -1 gets 0.

    FROM_DISTANCE: logit = -scale * dist[i] (the search distance: no vector is read);
    GATHER: logit = scale * q . x_cand[i] (the gathered vector); GATHER_UNIT: the same with
    the unit vector x / |x|.
    """
    for i in range(cand.shape[0]):
        c = cand[i]
        if c < 0:
            w[i] = -np.inf
        elif source == GATHER:
            w[i] = dot(q, vectors[c]) * scale
        elif source == GATHER_UNIT:
            w[i] = dot(q, vectors[c]) * scale / norms[c]
        else:
            w[i] = -dist[i] * scale
    softmax_range(w, 0, cand.shape[0])


@njit(cache=True, fastmath=FASTMATH)
def _select(cand, w, red, taken, lam, k, norms, vectors, out_pos):
    """Pick k positions: by weight (lam = 0, ties keep HNSW order) or greedy MMR (lam > 0)."""
    C = cand.shape[0]
    wmax = 0.0
    for i in range(C):
        taken[i] = False
        red[i] = -1.0
        wmax = max(wmax, w[i])
    for t in range(k):
        best, best_val = -1, -np.inf
        for i in range(C):
            if cand[i] < 0 or taken[i]:
                continue
            val = w[i]
            if lam > 0:
                rel = w[i] / wmax if wmax > 0 else 0.0
                val = (1 - lam) * rel - lam * (red[i] if t > 0 else 0.0)
            if val > best_val:
                best, best_val = i, val
        out_pos[t] = best
        if best < 0:
            continue
        taken[best] = True
        if lam > 0:
            xb = vectors[cand[best]]
            for i in range(C):
                if cand[i] >= 0 and not taken[i]:
                    denom = norms[cand[i]] * norms[cand[best]]
                    cos = dot(vectors[cand[i]], xb) / denom if denom > 0 else 0.0
                    red[i] = max(red[i], cos)


@njit(cache=True, nogil=True)
def rerank_attention(queries, cand, dist, vectors, norms, source, scale, diversity, wbuf, rbuf,
                     taken, out_pos, out_w, start, stop):
    """Top-k candidate positions by attention weight (or by MMR when diversity > 0).

    queries (Q, D) float32, cand (Q, C) int64 slots with their search distances dist (Q, C),
    vectors (N, D), norms (N,), ``source`` of the logits (see _softmax_logits); scratch
    wbuf, rbuf (Q, C) float32 and taken (Q, C) bool; writes out_pos (Q, k) positions into
    cand (-1 when fewer valid candidates) and out_w (Q, k) their attention weights, for the
    queries start:stop (callers split the rows over threads; the GIL is released).
    """
    k = out_pos.shape[1]
    for qi in range(start, stop):
        w = wbuf[qi]
        _softmax_logits(queries[qi], cand[qi], dist[qi], vectors, norms, source, scale, w)
        _select(cand[qi], w, rbuf[qi], taken[qi], diversity, k, norms, vectors, out_pos[qi])
        for t in range(k):
            out_w[qi, t] = w[out_pos[qi, t]] if out_pos[qi, t] >= 0 else 0
