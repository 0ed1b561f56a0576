"""Sparse attention over a CSR pattern shared by every (batch, head): row i of the pattern
lists the keys query i may attend to.  Cost is proportional to the number of allowed pairs.

Forward (per row, float64 softmax):  s_j = scale q_i . k_j,  lse_i = log sum_j e^{s_j},
o_i = sum_j e^{s_j - lse_i} v_j;  a row without keys gives o_i = 0, lse_i = -inf.
Backward (P recomputed from lse):  D_i = dO_i . o_i,  dS_ij = P_ij (dO_i . v_j - D_i),
dQ_i = scale sum_j dS_ij k_j  (rows in parallel),
dK_j = scale sum_i dS_ij q_i,  dV_j = sum_i P_ij dO_i  (keys in parallel, over the
transposed pattern), so no two threads write the same row.
"""
import numpy as np
from numba import njit, prange

from ._math import dot

ROWS_PER_TASK = 32


@njit(cache=True, parallel=True, fastmath={"reassoc", "contract", "arcp", "nsz"})
def forward(q, k, v, indptr, indices, scale, out, lse):
    """q (G, Lq, D), k (G, Lk, D), v (G, Lk, Dv); out (G, Lq, Dv), lse (G, Lq) float64."""
    G, Lq = q.shape[0], q.shape[1]
    Dv = v.shape[2]
    width = 1
    for i in range(Lq):
        width = max(width, indptr[i + 1] - indptr[i])
    ntasks = G * ((Lq + ROWS_PER_TASK - 1) // ROWS_PER_TASK)
    per_g = (Lq + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for t in prange(ntasks):
        g = t // per_g
        r0 = (t % per_g) * ROWS_PER_TASK
        s = np.empty(width)
        acc = np.empty(Dv)
        for i in range(r0, min(r0 + ROWS_PER_TASK, Lq)):
            lo, hi = indptr[i], indptr[i + 1]
            if hi == lo:
                out[g, i, :] = 0
                lse[g, i] = -np.inf
                continue
            qi = q[g, i]
            top = -np.inf
            for p in range(lo, hi):
                val = scale * dot(qi, k[g, indices[p]])
                s[p - lo] = val
                top = max(top, val)
            total = 0.0
            for p in range(hi - lo):
                s[p] = np.exp(s[p] - top)
                total += s[p]
            acc[:] = 0
            for p in range(lo, hi):
                w = s[p - lo]
                vj = v[g, indices[p]]
                for d in range(Dv):
                    acc[d] += w * vj[d]
            inv = 1.0 / total
            for d in range(Dv):
                out[g, i, d] = acc[d] * inv
            lse[g, i] = top + np.log(total)


@njit(cache=True, parallel=True, fastmath={"reassoc", "contract", "arcp", "nsz"})
def backward(q, k, v, do, lse, delta, indptr, indices, indptr_t, rows_t, scale, dq, dk, dv):
    """Fills dq (G, Lq, D), dk (G, Lk, D), dv (G, Lk, Dv); delta (G, Lq) = rowsum(dO * O)."""
    G, Lq, D = q.shape
    Lk, Dv = k.shape[1], v.shape[2]
    per_q = (Lq + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for t in prange(G * per_q):
        g = t // per_q
        r0 = (t % per_q) * ROWS_PER_TASK
        acc = np.empty(D)
        for i in range(r0, min(r0 + ROWS_PER_TASK, Lq)):
            acc[:] = 0
            if lse[g, i] != -np.inf:
                for p in range(indptr[i], indptr[i + 1]):
                    j = indices[p]
                    pij = np.exp(scale * dot(q[g, i], k[g, j]) - lse[g, i])
                    ds = pij * (dot(do[g, i], v[g, j]) - delta[g, i])
                    for d in range(D):
                        acc[d] += ds * k[g, j, d]
            for d in range(D):
                dq[g, i, d] = scale * acc[d]
    per_k = (Lk + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    for t in prange(G * per_k):
        g = t // per_k
        c0 = (t % per_k) * ROWS_PER_TASK
        ak = np.empty(D)
        av = np.empty(Dv)
        for j in range(c0, min(c0 + ROWS_PER_TASK, Lk)):
            ak[:] = 0
            av[:] = 0
            for p in range(indptr_t[j], indptr_t[j + 1]):
                i = rows_t[p]
                if lse[g, i] == -np.inf:
                    continue
                pij = np.exp(scale * dot(q[g, i], k[g, j]) - lse[g, i])
                ds = pij * (dot(do[g, i], v[g, j]) - delta[g, i])
                for d in range(D):
                    ak[d] += ds * q[g, i, d]
                for d in range(Dv):
                    av[d] += pij * do[g, i, d]
            for d in range(D):
                dk[g, j, d] = scale * ak[d]
            for d in range(Dv):
                dv[g, j, d] = av[d]


@njit(cache=True, inline="always")
def _band_row(i, Lk, window, stride, causal, is_global, global_cols, out, start, write):
    """Keys of row i for local window (|i-j| <= window, window < 0: none), strided
    ((i - j) % stride == 0, stride 0: none) and global tokens; returns their count and
    writes them from out[start] when ``write``."""
    hi_lim = min(Lk - 1, i) if causal else Lk - 1
    n = 0
    if is_global[i] if i < is_global.shape[0] else False:
        for j in range(0, hi_lim + 1):
            if write:
                out[start + n] = j
            n += 1
        return n
    lo = max(0, i - window) if window >= 0 else 0
    hi = min(hi_lim, i + window) if window >= 0 else -1
    for j in range(lo, hi + 1):
        if write:
            out[start + n] = j
        n += 1
    if stride > 0:
        j = i % stride
        while j <= hi_lim:
            if j < lo or j > hi:
                if write:
                    out[start + n] = j
                n += 1
            j += stride
    for g in range(global_cols.shape[0]):
        j = global_cols[g]
        if j > hi_lim or (lo <= j <= hi) or (stride > 0 and (i - j) % stride == 0):
            continue
        if write:
            out[start + n] = j
        n += 1
    return n


@njit(cache=True)
def band_csr(Lq, Lk, window, stride, causal, is_global, global_cols):
    """(indptr, indices) of the windowed / strided / global-token pattern."""
    indptr = np.zeros(Lq + 1, np.int64)
    dummy = np.empty(0, np.int64)
    for i in range(Lq):
        indptr[i + 1] = indptr[i] + _band_row(i, Lk, window, stride, causal, is_global,
                                              global_cols, dummy, 0, False)
    indices = np.empty(indptr[Lq], np.int64)
    for i in range(Lq):
        _band_row(i, Lk, window, stride, causal, is_global, global_cols, indices, indptr[i],
                  True)
    return indptr, indices
