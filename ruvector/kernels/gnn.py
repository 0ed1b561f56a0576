"""Graph attention / aggregation kernels over CSR (parallel over nodes, deterministic).

Edges are (source j -> target i).  ``indptr_t``/``perm_t`` list the edges into each target
(edge ids in original order within a target); ``indptr_s``/``perm_s`` the edges out of each
source.  Forward passes and target-side gradients run over the target CSR, everything that
accumulates into sources over the source CSR: every output row is written by exactly one
thread, no atomics (per-edge values are written to the edge's own row).

GAT (Velickovic et al. 2018), per head h:
    s_e = a_src . W x_j + a_dst . W x_i [+ a_edge . W_e e_e],   z_e = LeakyReLU(s_e)
    alpha_e = softmax over the edges into i of z_e,   out_i = sum_e alpha_e W x_j
Backward in three passes that gather features once: messages (by source: d alpha and the
message part of dh), scores (by target, scalars: d s), finish (by source blocks: the score
part of dh, the attention-vector and weight gradients, dx).
"""
import numpy as np
from numba import njit, prange

from ._math import FASTMATH, fexp
from ._simd import prefetch_row
from .gnn_dense import block_product, block_product_tn, num_blocks, row_block
from .dense import keep_bit


PREFETCH_AHEAD = 4  # gathers prefetch the row of the edge this many CSR slots ahead


@njit(cache=True, inline="always")
def _keep_factor(drop_p, inv_keep, seed, hh, e, H, E):
    """Dropout factor of edge e, head hh: 1 / (1 - p) when kept, 0 when dropped (1 with p = 0)."""
    if drop_p > 0:
        return inv_keep if keep_bit(seed, 0, hh, e, 0, H, E, 1, drop_p) else 0.0
    return 1.0


@njit(cache=True, inline="always")
def _score(s_src, s_dst, s_edge, has_edge, j, i, e, hh, slope):
    """(s, LeakyReLU(s)) of edge e = j -> i, head hh."""
    s = s_src[j, hh] + s_dst[i, hh]
    if has_edge:
        s += s_edge[e, hh]
    return s, (s if s > 0 else slope * s)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def gat_forward(h, s_src, s_dst, s_edge, has_edge, nbr_t, perm_t, indptr_t, slope, drop_p,
                seed, alpha, out):
    """alpha (E, H) in target-CSR order (row p is edge perm_t[p], source nbr_t[p]), before
    dropout; out (N, H, C) aggregated messages.  Scores and the softmax are scalar passes
    over the target's contiguous alpha rows; the aggregation reads each source row h_j once
    for all heads, prefetching the rows of the edges ahead."""
    N, H, C = out.shape
    E = nbr_t.shape[0]
    inv_keep = 1.0 / (1.0 - drop_p) if drop_p > 0 else 1.0
    for i in prange(N):
        start, stop = indptr_t[i], indptr_t[i + 1]
        for p in range(start, stop):
            for hh in range(H):
                alpha[p, hh] = _score(s_src, s_dst, s_edge, has_edge, nbr_t[p], i, perm_t[p],
                                      hh, slope)[1]
        for hh in range(H):
            top = alpha.dtype.type(-np.inf)
            for p in range(start, stop):
                top = max(top, alpha[p, hh])
            total = alpha.dtype.type(0)
            for p in range(start, stop):
                w = fexp(alpha[p, hh] - top)
                alpha[p, hh] = w
                total += w
            inv = alpha.dtype.type(1) / total if stop > start else alpha.dtype.type(0)
            for p in range(start, stop):
                alpha[p, hh] *= inv
        for hh in range(H):
            for c in range(C):
                out[i, hh, c] = 0
        for p in range(start, stop):
            prefetch_row(h, nbr_t[min(p + PREFETCH_AHEAD, E - 1)])
            j = nbr_t[p]
            for hh in range(H):
                a = alpha[p, hh] * _keep_factor(drop_p, inv_keep, seed, hh, perm_t[p], H, E)
                for c in range(C):
                    out[i, hh, c] += a * h[j, hh, c]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def gat_backward_messages(g, h, alpha, nbr_s, tslot_s, perm_s, indptr_s, drop_p, seed, da, dh):
    """Per source j, one pass over its outgoing edges (target i = nbr_s[p], target-CSR row
    q = tslot_s[p]) that reads each g_i once:

        da[q, h] = (Z_e / (1 - p)) g_i,h . h_j,h        (d loss / d alpha_e)
        dh_j,h   = sum_e alpha~_e g_i,h                 (message part of d loss / d h_j)
    """
    N, H, C = dh.shape
    E = nbr_s.shape[0]
    inv_keep = 1.0 / (1.0 - drop_p) if drop_p > 0 else 1.0
    for j in prange(N):
        for hh in range(H):
            for c in range(C):
                dh[j, hh, c] = 0
        for p in range(indptr_s[j], indptr_s[j + 1]):
            ahead = min(p + PREFETCH_AHEAD, E - 1)
            prefetch_row(g, nbr_s[ahead])
            prefetch_row(alpha, tslot_s[ahead])
            prefetch_row(da, tslot_s[ahead])
            i = nbr_s[p]
            q = tslot_s[p]
            for hh in range(H):
                keep = _keep_factor(drop_p, inv_keep, seed, hh, perm_s[p], H, E)
                a = alpha[q, hh] * keep
                dot = g.dtype.type(0)
                for c in range(C):
                    dot += g[i, hh, c] * h[j, hh, c]
                for c in range(C):
                    dh[j, hh, c] += a * g[i, hh, c]
                da[q, hh] = dot * keep


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def gat_backward_scores(alpha, s_src, s_dst, s_edge, has_edge, nbr_t, perm_t, indptr_t, slope,
                        ds, d_dst):
    """In place per target i: ``ds`` holds d alpha on entry and d loss / d s_e on exit;
    d_dst (N, H) = sum of ds into i.

        dz_e = alpha_e (d alpha_e - sum_e' alpha_e' d alpha_e'),   ds_e = dz_e [s_e > 0 or slope]
    """
    N, H = d_dst.shape
    for i in prange(N):
        start, stop = indptr_t[i], indptr_t[i + 1]
        for hh in range(H):
            weighted = ds.dtype.type(0)
            for p in range(start, stop):
                weighted += alpha[p, hh] * ds[p, hh]
            total = ds.dtype.type(0)
            for p in range(start, stop):
                dz = alpha[p, hh] * (ds[p, hh] - weighted)
                s = _score(s_src, s_dst, s_edge, has_edge, nbr_t[p], i, perm_t[p], hh, slope)[0]
                d = dz if s > 0 else slope * dz
                ds[p, hh] = d
                total += d
            d_dst[i, hh] = total


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def gat_project(x, w, att_src, att_dst, h, s_src, s_dst, W):
    """Per block of rows: h = x W (viewed (N, H, C)), s_src = sum_c h att_src,
    s_dst = sum_c h att_dst (the per-node halves of every edge score)."""
    N, H, C = h.shape
    h2 = h.reshape(N, H * C)
    for wk in prange(W):
        for blk in range(wk, num_blocks(N), W):
            i0, i1 = row_block(blk, N)
            block_product(h2, i0, i1, x, i0, w, 0)
            for i in range(i0, i1):
                for hh in range(H):
                    a = h.dtype.type(0)
                    b = h.dtype.type(0)
                    for c in range(C):
                        a += h[i, hh, c] * att_src[hh, c]
                        b += h[i, hh, c] * att_dst[hh, c]
                    s_src[i, hh] = a
                    s_dst[i, hh] = b


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def gat_backward_finish(ds, tslot_s, indptr_s, d_dst, att_src, att_dst, h, x, wt, dh, dx,
                        g_att_src, g_att_dst, g_w):
    """Per block of sources j (blocks dealt to W = len(g_w) workers):

        d_src_j = sum of ds over the edges out of j,
        dh_j,h += d_src_j,h att_src_h + d_dst_j,h att_dst_h   (score part of d loss / d h_j),
        g_att_src += sum_j d_src_j,h h_j,h,   g_att_dst += sum_j d_dst_j,h h_j,h,
        g_w += x^T dh,   dx = dh W^T
    into per-worker partial sums g_att_src, g_att_dst (W, H, C) and g_w (W, in, H C)."""
    N, H, C = dh.shape
    W = g_w.shape[0]
    dh2 = dh.reshape(N, H * C)
    for wk in prange(W):
        for blk in range(wk, num_blocks(N), W):
            i0, i1 = row_block(blk, N)
            for j in range(i0, i1):
                for hh in range(H):
                    t_src = ds.dtype.type(0)  # d_src_j,h
                    for p in range(indptr_s[j], indptr_s[j + 1]):
                        t_src += ds[tslot_s[p], hh]
                    t_dst = d_dst[j, hh]
                    for c in range(C):
                        dh[j, hh, c] += t_src * att_src[hh, c] + t_dst * att_dst[hh, c]
                        g_att_src[wk, hh, c] += t_src * h[j, hh, c]
                        g_att_dst[wk, hh, c] += t_dst * h[j, hh, c]
            block_product_tn(g_w[wk], x, i0, dh2, i0, i1)
            block_product(dx, i0, i1, dh2, i0, wt, 0)


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def segment_max(x, src, indptr_t, perm_t, out, arg):
    """out[i] = max over incoming edges of x[src[e]] per feature (0 with no edge);
    arg[i, d] = the edge id that gave the max (-1 with no edge)."""
    N, D = out.shape
    for i in prange(N):
        start, stop = indptr_t[i], indptr_t[i + 1]
        for d in range(D):
            out[i, d] = 0
            arg[i, d] = -1
        if start == stop:
            continue
        for d in range(D):
            best = -np.inf
            for p in range(start, stop):
                e = perm_t[p]
                v = x[src[e], d]
                if v > best:
                    best = v
                    arg[i, d] = e
            out[i, d] = best


@njit(cache=True, parallel=True)
def scatter_max_grad(g, arg, dst, indptr_s, perm_s, out):
    """out[j, d] = sum over edges e out of j with arg[dst[e], d] == e of g[dst[e], d]."""
    N, D = out.shape
    for j in prange(N):
        for d in range(D):
            out[j, d] = 0
        for p in range(indptr_s[j], indptr_s[j + 1]):
            e = perm_s[p]
            i = dst[e]
            for d in range(D):
                if arg[i, d] == e:
                    out[j, d] += g[i, d]
