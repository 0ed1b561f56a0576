"""Poincaré-ball attention of queries over keys/values in closed form.

Every Möbius sum (-q) ⊕ y is a combination a (-q) + b y of the two points, so the distances,
the tangent-space mean sum_j w_j log_q(v_j) = (-q) sum_j w_j alpha_j a_j + sum_j (w_j alpha_j
b_j) v_j and the Einstein midpoint reduce to dot products, norms and two passes over the
rows (float64 accumulators).  Projection onto the ball (norm <= (1 - eps)/sqrt(c)) is folded
into scale factors.  Formulas: see :mod:`ruvector.attention.manifolds`.
"""
import numpy as np
from numba import njit, prange

MIN_NORM = 1e-15
ARTANH_MAX = 1.0 - 1e-15


@njit(cache=True, inline="always")
def _artanh(z):
    z = min(max(z, 0.0), ARTANH_MAX)
    return 0.5 * np.log((1.0 + z) / (1.0 - z))


@njit(cache=True, inline="always")
def _dot(a, b):
    acc = 0.0
    for d in range(a.shape[0]):
        acc += np.float64(a[d]) * np.float64(b[d])
    return acc


@njit(cache=True, inline="always")
def _dot2(a, b):
    """(a . b, b . b) in one pass."""
    ab = 0.0
    bb = 0.0
    for d in range(a.shape[0]):
        y = np.float64(b[d])
        ab += np.float64(a[d]) * y
        bb += y * y
    return ab, bb


@njit(cache=True, inline="always")
def _sub_norm(q2, qy, y2, c, limit):
    """(a, b, den, norm, scale) of (-q) ⊕ y = (a (-q) + b y) / den, projected: the vector is
    multiplied by ``scale`` so its norm is at most ``limit``."""
    xy = -qy
    a = 1.0 + 2.0 * c * xy + c * y2
    b = 1.0 - c * q2
    den = max(1.0 + 2.0 * c * xy + c * c * q2 * y2, MIN_NORM)
    n2 = a * a * q2 + 2.0 * a * b * xy + b * b * y2
    n = np.sqrt(max(n2, MIN_NORM * MIN_NORM)) / den
    n = max(n, MIN_NORM)
    scale = 1.0
    if n > limit:
        scale = limit / n
        n = limit
    return a, b, den, n, scale


@njit(cache=True, fastmath={"reassoc", "contract", "arcp", "nsz"})
def _one_query(q, K, V, c, inv_t, eps, mode, out, w, tmp):
    D, M = q.shape[0], K.shape[0]
    sc = np.sqrt(c)
    limit = (1.0 - eps) / sc
    q2 = _dot(q, q)
    qs = 1.0
    if np.sqrt(q2) > limit:
        qs = limit / np.sqrt(q2)
        q2 = limit * limit
    top = -np.inf
    for j in range(M):
        qk, k2 = _dot2(q, K[j])
        ks = 1.0
        if np.sqrt(k2) > limit:
            ks = limit / np.sqrt(k2)
            k2 = limit * limit
        qk *= qs * ks
        _, _, _, n, _ = _sub_norm(q2, qk, k2, c, limit)
        w[j] = -(2.0 / sc) * _artanh(sc * n) * inv_t
        top = max(top, w[j])
    total = 0.0
    for j in range(M):
        w[j] = np.exp(w[j] - top)
        total += w[j]
    for j in range(M):
        w[j] /= total
    for d in range(D):
        tmp[d] = 0.0
    if mode == 0:                                  # tangent mean at q, then exp_q
        lam = 2.0 / max(1.0 - c * q2, MIN_NORM)
        coef_q = 0.0
        for j in range(M):
            qv, v2 = _dot2(q, V[j])
            vs = 1.0
            if np.sqrt(v2) > limit:
                vs = limit / np.sqrt(v2)
                v2 = limit * limit
            qv *= qs * vs
            a, b, den, n, scale = _sub_norm(q2, qv, v2, c, limit)
            alpha = 2.0 / (sc * lam) * _artanh(sc * n) / n * scale / den
            coef_q += w[j] * alpha * a
            g = w[j] * alpha * b * vs
            for d in range(D):
                tmp[d] += g * V[j, d]
        for d in range(D):
            tmp[d] -= coef_q * q[d] * qs            # u = sum_j w_j log_q(v_j)
        un = max(np.sqrt(_dot(tmp, tmp)), MIN_NORM)
        f = np.tanh(sc * lam * un / 2.0) / (sc * un)
        if f * un > limit:
            f = limit / un
        # out = q ⊕ (f u)
        xy = f * qs * _dot(q, tmp)
        y2 = f * f * un * un
        a = 1.0 + 2.0 * c * xy + c * y2
        b = 1.0 - c * q2
        den = max(1.0 + 2.0 * c * xy + c * c * q2 * y2, MIN_NORM)
        for d in range(D):
            out[d] = (a * q[d] * qs + b * f * tmp[d]) / den
    else:                                          # Einstein midpoint in the Klein model
        wsum = 0.0
        for j in range(M):
            v2 = _dot(V[j], V[j])
            vs = 1.0
            if np.sqrt(v2) > limit:
                vs = limit / np.sqrt(v2)
                v2 = limit * limit
            kfac = 2.0 / (1.0 + c * v2)
            gamma = 1.0 / np.sqrt(max(1.0 - c * kfac * kfac * v2, MIN_NORM))
            wsum += w[j] * gamma
            g = w[j] * gamma * kfac * vs
            for d in range(D):
                tmp[d] += g * V[j, d]
        for d in range(D):
            tmp[d] /= wsum
        k2 = _dot(tmp, tmp)
        f = 1.0 / (1.0 + np.sqrt(max(1.0 - c * k2, MIN_NORM)))
        for d in range(D):
            out[d] = tmp[d] * f
    n = np.sqrt(_dot(out, out))
    if n > limit:
        for d in range(D):
            out[d] *= limit / n


@njit(cache=True, parallel=True)
def attention_parallel(Q, K, V, c, inv_t, eps, mode, out, W):
    """Rows of Q in parallel: out (N, D) float64, W (N, M) float64 weights."""
    tmp = np.empty((Q.shape[0], Q.shape[1]))
    for i in prange(Q.shape[0]):
        _one_query(Q[i], K, V, c, inv_t, eps, mode, out[i], W[i], tmp[i])


@njit(cache=True)
def attention_serial(Q, K, V, c, inv_t, eps, mode, out, W):
    tmp = np.empty(Q.shape[1])
    for i in range(Q.shape[0]):
        _one_query(Q[i], K, V, c, inv_t, eps, mode, out[i], W[i], tmp)
