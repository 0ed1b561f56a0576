"""Poincaré-ball attention of queries over keys/values in closed form.

Every Möbius sum (-q) ⊕ y is a combination a (-q) + b y of the two points, so the distances,
the tangent-space mean sum_j w_j log_q(v_j) = (-q) sum_j w_j alpha_j a_j + sum_j (w_j alpha_j
b_j) v_j and the Einstein midpoint reduce to dot products, norms and two passes over the
rows (float64 accumulators).  Projection onto the ball (norm <= (1 - eps)/sqrt(c)) is folded
into scale factors.  Formulas: see :mod:`ruvector.attention.manifolds`.
"""
import numpy as np
from numba import njit, prange

from ._math import exp_into_f64, log_into_f64

MIN_NORM = 1e-15
ARTANH_MAX = 1.0 - 1e-15


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract", "arcp", "nsz"})
def _dots(q, X, xy, yy):
    """xy[j] = q . X_j, yy[j] = X_j . X_j (float64 accumulators, one pass)."""
    for j in range(X.shape[0]):
        ab = 0.0
        bb = 0.0
        for d in range(X.shape[1]):
            y = np.float64(X[j, d])
            ab += np.float64(q[d]) * y
            bb += y * y
        xy[j] = ab
        yy[j] = bb


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract", "arcp", "nsz"})
def _artanh_over_n(q2, qs, xy, yy, c, limit, a_out, b_out, out, ibuf):
    """Per row j of a (keys or values) block: the Möbius sum (-q) ⊕ y_j = (a_j (-q) + b_j
    y_j) / den_j with y_j projected; writes a_j / den_j, b_j s_j / den_j (s_j: the
    projection scales of y_j and of the sum) and artanh(sc |sum_j|) / |sum_j| into the
    buffers (vectorised loops; the log through :func:`log_into_f64`).  Returns nothing."""
    sc = np.sqrt(c)
    M = xy.shape[0]
    for j in range(M):
        ys = min(1.0, limit / max(np.sqrt(yy[j]), MIN_NORM))
        qy = xy[j] * qs * ys
        y2 = yy[j] * ys * ys
        a = 1.0 + 2.0 * c * (-qy) + c * y2
        b = 1.0 - c * q2
        den = max(1.0 + 2.0 * c * (-qy) + c * c * q2 * y2, MIN_NORM)
        n2 = a * a * q2 - 2.0 * a * b * qy + b * b * y2
        n = max(np.sqrt(max(n2, MIN_NORM * MIN_NORM)) / den, MIN_NORM)
        scale = min(1.0, limit / n)
        n = min(n, limit)
        z = min(sc * n, ARTANH_MAX)
        a_out[j] = a * scale / den
        b_out[j] = b * ys * scale / den
        xy[j] = n                                   # |(-q) ⊕ y_j| (projected)
        out[j] = (1.0 + z) / (1.0 - z)
    log_into_f64(out, out, ibuf)
    for j in range(M):
        out[j] = 0.5 * out[j] / xy[j]              # artanh(sc n) / n


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract", "arcp", "nsz"})
def _one_query(q, K, V, c, inv_t, eps, mode, out, w, tmp, xy, yy, ab, bb, ibuf):
    D, M = q.shape[0], K.shape[0]
    sc = np.sqrt(c)
    limit = (1.0 - eps) / sc
    q2 = 0.0
    for d in range(D):
        q2 += np.float64(q[d]) * np.float64(q[d])
    qs = min(1.0, limit / max(np.sqrt(q2), MIN_NORM))
    q2 = q2 * qs * qs
    _dots(q, K, xy, yy)
    _artanh_over_n(q2, qs, xy, yy, c, limit, ab, bb, w, ibuf)
    top = -np.inf
    poison = 0.0
    for j in range(M):                             # logits = -d / t, d = 2/sc artanh(sc n)
        w[j] = -(2.0 / sc) * w[j] * xy[j] * inv_t
        poison += w[j] * 0.0                       # max() below would drop a NaN
        top = max(top, w[j])
    inv = 1.0 / exp_into_f64(w, top, w, ibuf)
    for j in range(M):
        w[j] *= inv
    for d in range(D):
        tmp[d] = 0.0
    _dots(q, V, xy, yy)
    if mode == 0:                                  # tangent mean at q, then exp_q
        lam = 2.0 / max(1.0 - c * q2, MIN_NORM)
        _artanh_over_n(q2, qs, xy, yy, c, limit, ab, bb, yy, ibuf)
        coef_q = 0.0
        for j in range(M):
            alpha = 2.0 / (sc * lam) * yy[j]
            coef_q += w[j] * alpha * ab[j]
            xy[j] = w[j] * alpha * bb[j]           # coefficient of V_j
        _combine(V, xy, tmp)
        for d in range(D):
            tmp[d] -= coef_q * q[d] * qs            # u = sum_j w_j log_q(v_j)
        un = max(np.sqrt(_norm2(tmp)), MIN_NORM)
        f = min(np.tanh(sc * lam * un / 2.0) / (sc * un), limit / un)
        qu = 0.0
        for d in range(D):
            qu += np.float64(q[d]) * tmp[d]
        xq = f * qs * qu                           # out = q ⊕ (f u)
        y2 = f * f * un * un
        a = 1.0 + 2.0 * c * xq + c * y2
        b = 1.0 - c * q2
        den = max(1.0 + 2.0 * c * xq + c * c * q2 * y2, MIN_NORM)
        for d in range(D):
            out[d] = (a * q[d] * qs + b * f * tmp[d]) / den
    else:                                          # Einstein midpoint in the Klein model
        wsum = 0.0
        for j in range(M):
            vs = min(1.0, limit / max(np.sqrt(yy[j]), MIN_NORM))
            v2 = yy[j] * vs * vs
            kfac = 2.0 / (1.0 + c * v2)
            gamma = 1.0 / np.sqrt(max(1.0 - c * kfac * kfac * v2, MIN_NORM))
            wsum += w[j] * gamma
            xy[j] = w[j] * gamma * kfac * vs
        _combine(V, xy, tmp)
        for d in range(D):
            tmp[d] /= wsum
        f = 1.0 / (1.0 + np.sqrt(max(1.0 - c * _norm2(tmp), MIN_NORM)))
        for d in range(D):
            out[d] = tmp[d] * f
    n = np.sqrt(_norm2(out))
    if n > limit:
        for d in range(D):
            out[d] *= limit / n
    return poison + n * 0.0                        # NaN when an input entry was NaN/Inf


@njit(cache=True, error_model="numpy", fastmath={"reassoc", "contract", "arcp", "nsz"})
def _combine(V, coef, acc):
    """acc += sum_j coef[j] V_j."""
    for j in range(V.shape[0]):
        g = coef[j]
        for d in range(V.shape[1]):
            acc[d] += g * V[j, d]


@njit(cache=True, inline="always")
def _norm2(x):
    acc = 0.0
    for d in range(x.shape[0]):
        acc += x[d] * x[d]
    return acc


@njit(cache=True, parallel=True, error_model="numpy")
def attention_parallel(Q, K, V, c, inv_t, eps, mode, out, W):
    """Rows of Q in parallel: out (N, D) float64, W (N, M) float64 weights.  Returns 0, or
    NaN when an input held NaN/Inf (it reaches a weight or an output)."""
    N, D, M = Q.shape[0], Q.shape[1], K.shape[0]
    tmp = np.empty((N, D))
    buf = np.empty((N, 4, M))
    ibuf = np.empty((N, M), np.int64)
    poison = np.zeros(N)
    for i in prange(N):
        poison[i] = _one_query(Q[i], K, V, c, inv_t, eps, mode, out[i], W[i], tmp[i],
                               buf[i, 0], buf[i, 1], buf[i, 2], buf[i, 3], ibuf[i])
    return poison.sum()


@njit(cache=True, error_model="numpy")
def attention_serial(Q, K, V, c, inv_t, eps, mode, out, W):
    D, M = Q.shape[1], K.shape[0]
    tmp = np.empty(D)
    buf = np.empty((4, M))
    ibuf = np.empty(M, np.int64)
    poison = 0.0
    for i in range(Q.shape[0]):
        poison += _one_query(Q[i], K, V, c, inv_t, eps, mode, out[i], W[i], tmp, buf[0],
                             buf[1], buf[2], buf[3], ibuf)
    return poison
