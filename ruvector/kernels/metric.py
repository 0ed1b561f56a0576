"""Exact metric distances between queries and gathered stored vectors, and the k nearest.

    l2:      d = |q - x|^2
    cosine:  d = 1 - q . x / (|q| |x|)
    ip:      d = 1 - q . x

Candidates are slot numbers into the vector array (-1 = none, distance inf); vectors are
gathered row by row inside the kernel, no (Q, C, D) copy.
"""
import numpy as np
from numba import njit, prange

from ._math import FASTMATH, dot

METRIC_CODES = {"l2": 0, "cosine": 1, "ip": 2}


@njit(cache=True, parallel=True, fastmath=FASTMATH)
def exact_distances(queries, cand, vectors, norms, metric, out):
    """out[q, i] = metric distance between queries[q] and vectors[cand[q, i]] (inf for -1)."""
    Q, C = cand.shape
    for qi in prange(Q):
        q = queries[qi]
        qn = np.sqrt(dot(q, q))
        for i in range(C):
            c = cand[qi, i]
            if c < 0:
                out[qi, i] = np.inf
            elif metric == 0:
                x = vectors[c]
                acc = np.float32(0)
                for d in range(q.shape[0]):
                    diff = q[d] - x[d]
                    acc += diff * diff
                out[qi, i] = acc
            elif metric == 1:
                out[qi, i] = 1 - dot(q, vectors[c]) / (qn * norms[c])
            else:
                out[qi, i] = 1 - dot(q, vectors[c])


def exact_top_k(queries, cand, vectors, norms, metric, k):
    """(slots (Q, k), distances (Q, k)): the k candidates of each query nearest by ``metric``,
    nearest first (ties in candidate order), padded with slot -1 / distance inf.

    queries (Q, D) float32, cand (Q, C) int64 slots, vectors (N, D), norms (N,)."""
    Q, C = cand.shape
    d = np.empty((Q, C), np.float32)
    exact_distances(queries, cand, vectors, norms, METRIC_CODES[metric], d)
    k_eff = min(k, C)
    if k_eff < C:
        part = np.sort(np.argpartition(d, k_eff - 1, axis=1)[:, :k_eff], axis=1)
    else:
        part = np.broadcast_to(np.arange(C), (Q, C))
    picked = np.take_along_axis(d, part, axis=1)
    order = np.take_along_axis(part, np.argsort(picked, axis=1, kind="stable"), axis=1)
    slots = np.full((Q, k), -1, dtype=np.int64)
    dist = np.full((Q, k), np.inf, dtype=np.float32)
    slots[:, :k_eff] = np.take_along_axis(cand, order, axis=1)
    dist[:, :k_eff] = np.take_along_axis(d, order, axis=1)
    return slots, dist
