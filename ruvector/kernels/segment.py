"""Per-segment softmax scoring with top-k selection (attention-guided traversal).

For a segment s (candidate rows ``ptr[s]:ptr[s+1]``) with query ``q = Q[q_row[s]]``:

    w_j = softmax_j( scale * q . X[cand[j]] )        (j in the segment, float64)

and the k largest weights are kept (ties: the earlier candidate first).
"""
import numpy as np
from numba import njit

from ._math import FASTMATH


@njit(cache=True, fastmath=FASTMATH, inline="always")
def softmax_range(w, lo, hi):
    """w[lo:hi] <- softmax(w[lo:hi]), max-subtracted; -inf entries get 0 (all -inf: all 0)."""
    top = -np.inf
    for j in range(lo, hi):
        top = max(top, w[j])
    if top == -np.inf:
        w[lo:hi] = 0
        return
    total = 0.0
    for j in range(lo, hi):
        w[j] = np.exp(w[j] - top)
        total += w[j]
    for j in range(lo, hi):
        w[j] /= total


@njit(cache=True, nogil=True)
def segment_softmax_topk(X, cand, ptr, Q, q_row, scale, k):
    """Returns (weights (m,) float64, keep (m,) bool)."""
    m = cand.shape[0]
    D = X.shape[1]
    weights = np.zeros(m, np.float64)
    keep = np.zeros(m, np.bool_)
    for s in range(ptr.shape[0] - 1):
        lo, hi = ptr[s], ptr[s + 1]
        if hi <= lo:
            continue
        q = Q[q_row[s]]
        for j in range(lo, hi):
            x = X[cand[j]]
            acc = 0.0
            for d in range(D):
                acc += np.float64(q[d]) * np.float64(x[d])
            weights[j] = acc * scale
        softmax_range(weights, lo, hi)
        if hi - lo <= k:
            keep[lo:hi] = True
        else:
            order = np.argsort(-weights[lo:hi], kind="mergesort")
            for r in range(k):
                keep[lo + order[r]] = True
    return weights, keep
