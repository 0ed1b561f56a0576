"""Graph attention / aggregation kernels over CSR (parallel over nodes, deterministic).

Edges are (source j -> target i).  ``indptr_t``/``perm_t`` list the edges into each target
(edge ids in original order within a target); ``indptr_s``/``perm_s`` the edges out of each
source.  Forward passes and target-side gradients run over the target CSR, scatters to
sources over the source CSR: every output row is written by exactly one thread, no atomics.

GAT (Velickovic et al. 2018), per head h:
    s_e = a_src . W x_j + a_dst . W x_i [+ a_edge . W_e e_e],   z_e = LeakyReLU(s_e)
    alpha_e = softmax over the edges into i of z_e,   out_i = sum_e alpha_e W x_j
"""
import numpy as np
from numba import njit, prange

from ._math import FASTMATH, fexp
from .dense import keep_bit


@njit(cache=True)
def csr_order(keys, n):
    """(indptr (n+1,), perm (E,)): a stable counting sort of edge ids by ``keys`` in [0, n)."""
    indptr = np.zeros(n + 1, np.int64)
    for e in range(keys.shape[0]):
        indptr[keys[e] + 1] += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    perm = np.empty(keys.shape[0], np.int64)
    for e in range(keys.shape[0]):
        perm[fill[keys[e]]] = e
        fill[keys[e]] += 1
    return indptr, perm


@njit(cache=True, inline="always")
def _dropped_weight(a, drop_p, inv_keep, seed, hh, e, H, E):
    if drop_p > 0:
        return a * inv_keep if keep_bit(seed, 0, hh, e, 0, H, E, 1, drop_p) else 0.0
    return a


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def gat_forward(h, s_src, s_dst, s_edge, has_edge, src, indptr_t, perm_t, slope, drop_p, seed,
                alpha, out):
    """alpha (E, H) in target-CSR order (row p is edge perm_t[p]), before dropout;
    out (N, H, C) aggregated messages."""
    N, H, C = out.shape
    E = src.shape[0]
    inv_keep = 1.0 / (1.0 - drop_p) if drop_p > 0 else 1.0
    for i in prange(N):
        for hh in range(H):
            for c in range(C):
                out[i, hh, c] = 0
        start, stop = indptr_t[i], indptr_t[i + 1]
        for hh in range(H):  # one head at a time: scalar running max and sum, no allocation
            top = alpha.dtype.type(-np.inf)
            for p in range(start, stop):
                e = perm_t[p]
                s = s_src[src[e], hh] + s_dst[i, hh]
                if has_edge:
                    s += s_edge[e, hh]
                z = alpha.dtype.type(s if s > 0 else slope * s)
                alpha[p, hh] = z
                top = max(top, z)
            total = alpha.dtype.type(0)
            for p in range(start, stop):
                w = fexp(alpha[p, hh] - top)
                alpha[p, hh] = w
                total += w
            for p in range(start, stop):
                e = perm_t[p]
                j = src[e]
                a = alpha[p, hh] / total
                alpha[p, hh] = a
                a = _dropped_weight(a, drop_p, inv_keep, seed, hh, e, H, E)
                for c in range(C):
                    out[i, hh, c] += a * h[j, hh, c]


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def gat_backward_targets(g, h, alpha, s_src, s_dst, s_edge, has_edge, src, indptr_t, perm_t,
                         slope, drop_p, seed, ds, d_dst):
    """ds (E, H) = d loss / d s_e in target-CSR order; d_dst (N, H) = sum of ds into i.

    d alpha_e = (Z_e / (1 - p)) g_i . W x_j;  dz_e = alpha_e (d alpha_e - sum_e' alpha_e' d alpha_e');
    ds_e = dz_e * (1 if s_e > 0 else slope).
    """
    N, H, C = g.shape
    E = src.shape[0]
    inv_keep = 1.0 / (1.0 - drop_p) if drop_p > 0 else 1.0
    for i in prange(N):
        start, stop = indptr_t[i], indptr_t[i + 1]
        weighted = np.zeros(H)
        for p in range(start, stop):
            e = perm_t[p]
            j = src[e]
            for hh in range(H):
                da = 0.0
                for c in range(C):
                    da += g[i, hh, c] * h[j, hh, c]
                da = _dropped_weight(da, drop_p, inv_keep, seed, hh, e, H, E)
                ds[p, hh] = da
                weighted[hh] += alpha[p, hh] * da
        for hh in range(H):
            d_dst[i, hh] = 0
        for p in range(start, stop):
            e = perm_t[p]
            for hh in range(H):
                dz = alpha[p, hh] * (ds[p, hh] - weighted[hh])
                s = s_src[src[e], hh] + s_dst[i, hh]
                if has_edge:
                    s += s_edge[e, hh]
                d = dz if s > 0 else slope * dz
                ds[p, hh] = d
                d_dst[i, hh] += d


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def gat_backward_sources(g, alpha, ds, dst, pos_t, indptr_s, perm_s, drop_p, seed, dh, d_src):
    """Per source j: dh_j = sum_e alpha~_e g_i (N, H, C), d_src_j = sum_e ds_e (N, H);
    ``pos_t[e]`` is edge e's row in the target-CSR-ordered alpha and ds."""
    N, H, C = dh.shape
    E = dst.shape[0]
    inv_keep = 1.0 / (1.0 - drop_p) if drop_p > 0 else 1.0
    for j in prange(N):
        for hh in range(H):
            d_src[j, hh] = 0
            for c in range(C):
                dh[j, hh, c] = 0
        for p in range(indptr_s[j], indptr_s[j + 1]):
            e = perm_s[p]
            i = dst[e]
            q = pos_t[e]
            for hh in range(H):
                a = _dropped_weight(alpha[q, hh], drop_p, inv_keep, seed, hh, e, H, E)
                d_src[j, hh] += ds[q, hh]
                for c in range(C):
                    dh[j, hh, c] += a * g[i, hh, c]


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
