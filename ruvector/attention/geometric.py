"""Attention on curved spaces.

HyperbolicAttention (Poincaré ball, curvature -c):

    w_ij = softmax_j(-d_c(q_i, k_j) / temperature)
    tangent:  out_i = exp_{q_i}(sum_j w_ij log_{q_i}(v_j))
    einstein: out_i = Klein->Poincaré( sum_j w_ij γ_j k_j / sum_j w_ij γ_j ),
              k_j = 2 v_j / (1 + c|v_j|²) (Klein), γ_j = 1 / sqrt(1 - c|k_j|²)
    frechet:  out_i = argmin_m sum_j w_ij d_c(m, v_j)², by the Riemannian gradient steps
              m <- exp_m(sum_j w_ij log_m(v_j)) from the Einstein midpoint, until the step's
              norm is below ``tol`` or ``max_iter`` steps.

SphericalAttention (sphere of radius R): w_ij = softmax_j(-d(q_i, k_j) / temperature) with
the geodesic distance, out_i = exp_{q_i}(sum_j w_ij log_{q_i}(v_j)).

MixedCurvatureAttention over a ProductManifold: w_ij = softmax_j(-sqrt(sum_c a_c d_c(q_i,
k_j)²) / temperature) with per-component mixing weights a_c >= 0, out_i = exp_{q_i}(sum_j
w_ij log_{q_i}(v_j)) component by component.

Inputs: a query (D,) or queries (N, D), key and value (M, D); ``forward_batch`` takes
(B, N, D) / (B, M, D).  Outputs stay on the manifold.  ``reference(query, key, value)``
evaluates the same formulas in float64 NumPy (the slow reference the kernels are tested
against).  ``backward(grad_out)`` returns (d_query, d_key, d_value) of the last forward (tangent and Einstein aggregation, sphere and
mixed), computed by reverse-mode differentiation of the formulas in float64.
"""
import numpy as np

from .._deprecated import renamed
from .._threads import num_workers
from .._validate import as_array, check_finite, choice, finite_number, positive_int
from ..errors import DimensionMismatch, InvalidConfig, InvalidInput
from ..nn.module import Module
from . import _autodiff as ad
from ..kernels import hyperbolic
from .manifolds import BALL_EPS, MIN_NORM, Euclidean, PoincareBall, ProductManifold, Sphere

AGGREGATIONS = ("tangent", "einstein", "frechet")
PARALLEL_MIN_PAIRS = 1 << 15


def _compute_dtype(query):
    """float64 when the query is float64, float32 otherwise."""
    return np.dtype(np.float64 if getattr(query, "dtype", None) == np.float64 else np.float32)


class _GeometricAttention(Module):
    """Shared input handling, tangent-mean aggregation and autodiff backward (no
    parameters; the compute dtype follows the query: float64 stays float64)."""

    def __init__(self, dim, manifold, temperature):
        super().__init__()
        self.dim = positive_int(dim, "dim")
        self.manifold = manifold
        self.temperature = finite_number(temperature, "temperature", positive=True)
        self._cache = None
        self._weights = None

    def _inputs(self, query, key, value):
        """Arrays in the query's float dtype (float64 input stays float64, anything else
        becomes float32); formulas evaluate in float64.  NaN/Inf are found in the results
        (every input entry reaches the weights or the output), see :meth:`forward`."""
        dt = _compute_dtype(query)
        q = as_array(query, "query", dtype=dt, ndim=(1, 2), check=False)
        k = as_array(key, "key", dtype=dt, ndim=2, check=False)
        v = as_array(value, "value", dtype=dt, ndim=2, check=False)
        for name, a in (("query", q), ("key", k), ("value", v)):
            if a.shape[-1] != self.dim:
                raise DimensionMismatch(f"{name} {a.shape} must have width dim={self.dim}")
        if k.shape[0] != v.shape[0]:
            raise DimensionMismatch(f"key {k.shape} and value {v.shape} differ in length")
        return q, k, v, dt

    def _eps(self, dt):
        return BALL_EPS[dt]

    def _logits(self, q, k, eps):
        d = self.manifold._dist(q[:, None, :], k[None, :, :], eps)[..., 0]
        return -d / self.temperature

    def _tangent_mean(self, q, v, w, eps):
        logs = self.manifold._logmap(q[:, None, :], v[None, :, :], eps)
        u = ad.sum(ad.mul(w[:, :, None], logs), axis=1, keepdims=False)
        return self.manifold._expmap(q, u, eps)

    def _formula(self, q, k, v, eps):
        w = ad.softmax(self._logits(q, k, eps))
        return self._aggregate(q, v, w, eps), w

    def _aggregate(self, q, v, w, eps):
        return self._tangent_mean(q, v, w, eps)

    def _prepare_points(self, q, k, v, eps):
        return q, k, v

    def _points(self, query, key, value):
        """Validated (q (N, D), k, v, dt, query rank) on the manifold."""
        q, k, v, dt = self._inputs(query, key, value)
        q2, k, v = self._prepare_points(q.reshape(-1, self.dim), k, v, self._eps(dt))
        return q2, k, v, dt, q.ndim

    @renamed(keys="key", values="value")
    def forward(self, query, key, value):
        """Output point(s): (D,) for one query, (N, D) for N."""
        q2, k, v, dt, qndim = self._points(query, key, value)
        out, w, finite = self._compute(q2, k, v, dt)
        if not finite:
            for name, a in (("query", q2), ("key", k), ("value", v)):
                check_finite(a, name)
        self._cache = (q2, k, v, dt, qndim)
        self._weights = w
        out = out.astype(dt)
        return out[0] if qndim == 1 else out

    def reference(self, query, key, value):
        """(out, weights) from the formulas in float64 NumPy, without the kernels; shapes
        as :meth:`forward` and :meth:`compute_manifold_weights`."""
        q2, k, v, dt, qndim = self._points(query, key, value)
        out, w, _ = _GeometricAttention._compute(self, q2, k, v, dt)
        return (out[0], w[0]) if qndim == 1 else (out, w)

    __call__ = forward

    def _compute(self, q, k, v, dt):
        """(out, weights, finite) in float64."""
        f64 = [a.astype(np.float64) for a in (q, k, v)]
        with np.errstate(all="ignore"):         # NaN/Inf inputs are reported by the caller
            out, w = self._formula(*f64, self._eps(dt))
        out, w = ad.value(out), ad.value(w)
        return out, w, bool(np.isfinite(out.sum()) and np.isfinite(w.sum()))

    @renamed(queries="query", keys="key", values="value")
    def forward_batch(self, query, key, value):
        """(B, N, D) queries with (B, M, D) keys and values -> (B, N, D)."""
        dt = _compute_dtype(query)
        Q, K, V = (as_array(a, name, dtype=dt, ndim=3, check=False)   # forward checks values
                   for a, name in ((query, "query"), (key, "key"), (value, "value")))
        if not Q.shape[0] == K.shape[0] == V.shape[0]:
            raise DimensionMismatch(f"batch sizes differ: {Q.shape}, {K.shape}, {V.shape}")
        return np.stack([self.forward(Q[b], K[b], V[b]) for b in range(Q.shape[0])])

    @renamed(keys="key")
    def compute_manifold_weights(self, query, key):
        """softmax_j(-d(q, k_j) / temperature): (M,) for one query, (N, M) for N."""
        q2, k, _, dt, qndim = self._points(query, key, key)
        out, w, finite = self._compute(q2, k, k, dt)
        if not finite:
            check_finite(q2, "query")
            check_finite(k, "key")
        w = w.astype(dt)
        return w[0] if qndim == 1 else w

    def get_attention_weights(self):
        """Weights (N, M) of the last forward."""
        return self._weights

    def exp_map(self, base, tangent):
        return self.manifold.expmap(base, tangent)

    def project_tangent(self, point, base):
        """The tangent vector at ``base`` pointing to ``point``: log_base(point)."""
        return self.manifold.logmap(base, point)

    def backward(self, grad_out):
        """(d_query, d_key, d_value) of the last forward given dL/d out."""
        if self._cache is None:
            raise InvalidConfig(f"{type(self).__name__}.backward called before forward")
        q, k, v, dt, qndim = self._cache
        g = as_array(grad_out, "grad_out", dtype=np.float64, ndim=(1, 2)).reshape(q.shape)
        tq, tk, tv = (ad.Tensor(a.astype(np.float64)) for a in (q, k, v))
        out, _ = self._formula(tq, tk, tv, self._eps(dt))
        dq, dk, dv = ad.grad(out, [tq, tk, tv], g)
        dq = dq[0] if qndim == 1 else dq
        return dq.astype(dt), dk.astype(dt), dv.astype(dt)


class HyperbolicAttention(_GeometricAttention):
    def __init__(self, dim, c=1.0, temperature=1.0, aggregation="tangent", *, tol=1e-6,
                 max_iter=50, strict=False):
        super().__init__(dim, PoincareBall(c, strict=strict), temperature)
        choice(aggregation, "aggregation", AGGREGATIONS)
        self.aggregation = aggregation
        self.c = self.manifold.c
        self.tol = finite_number(tol, "tol", positive=True)
        self.max_iter = positive_int(max_iter, "max_iter")

    def _prepare_points(self, q, k, v, eps):
        ball = self.manifold
        if ball.strict:
            for name, a in (("query", q), ("key", k), ("value", v)):
                ball._points(a, None, name)
        return q, k, v

    def _einstein(self, v, w, eps):
        ball = self.manifold
        kl = ball.to_klein(ball._project(v, eps))
        gamma = 1.0 / ad.sqrt(ad.maximum(1.0 - ball.c * ad.dot(kl, kl), MIN_NORM))  # (M, 1)
        num = ad.matmul(ad.mul(w, _transpose(gamma)), kl)
        den = ad.matmul(w, gamma)
        return ball._project(ball.from_klein(num / den), eps)

    def _aggregate(self, q, v, w, eps):
        if self.aggregation == "einstein":
            return self._einstein(v, w, eps)
        if self.aggregation == "tangent":
            return self._tangent_mean(q, v, w, eps)
        return self._frechet(q, v, w, eps)

    def _formula(self, q, k, v, eps):
        ball = self.manifold
        q, k, v = ball._project(q, eps), ball._project(k, eps), ball._project(v, eps)
        w = ad.softmax(self._logits(q, k, eps))
        return self._aggregate(q, v, w, eps), w

    def _frechet(self, q, v, w, eps):
        ball = self.manifold
        m = ad.value(self._einstein(v, w, eps))
        w, v = ad.value(w), ad.value(v)
        for _ in range(self.max_iter):
            logs = ball._logmap(m[:, None, :], v[None], eps)
            step = (w[:, :, None] * logs).sum(axis=1)
            m = ball._expmap(m, step, eps)
            if np.max(np.linalg.norm(step, axis=-1)) < self.tol:
                break
        return m

    def _compute(self, q, k, v, dt):
        if self.aggregation == "frechet":
            return super()._compute(q, k, v, dt)
        out = np.empty(q.shape)
        w = np.empty((q.shape[0], k.shape[0]))
        kernel = hyperbolic.attention_parallel if (
            q.shape[0] > 1 and q.shape[0] * k.shape[0] >= PARALLEL_MIN_PAIRS
            and num_workers() > 1) else hyperbolic.attention_serial
        poison = kernel(q, k, v, self.c, 1.0 / self.temperature, self._eps(dt),
                        0 if self.aggregation == "tangent" else 1, out, w)
        return out, w, poison == 0.0

    def backward(self, grad_out):
        if self.aggregation == "frechet":
            raise InvalidConfig("backward is implemented for 'tangent' and 'einstein' "
                                "aggregation, not 'frechet'")
        return super().backward(grad_out)


def _transpose(x):
    """(M, 1) column -> (1, M) row for broadcasting against weights (N, M)."""
    return ad.getitem(x, (slice(None), 0))[None, :] if isinstance(x, ad.Tensor) else x[:, 0][None]


class SphericalAttention(_GeometricAttention):
    def __init__(self, dim, radius=1.0, temperature=1.0):
        super().__init__(dim, Sphere(radius), temperature)

    def _prepare_points(self, q, k, v, eps):
        for name, a in (("query", q), ("key", k), ("value", v)):
            if np.any(np.linalg.norm(a, axis=-1) == 0):
                raise InvalidInput(f"{name} has a zero vector, which has no place on the sphere")
        return q, k, v

    def _formula(self, q, k, v, eps):
        s = self.manifold
        return super()._formula(s._project(q), s._project(k), s._project(v), eps)


class MixedCurvatureAttention(_GeometricAttention):
    """``components``: a ProductManifold or ``[(kind, dim, param), ...]`` with kind
    "euclidean", "hyperbolic" (param c) or "spherical" (param radius); ``mixing``: one weight
    >= 0 per component (default 1, the product distance)."""

    def __init__(self, components, temperature=1.0, mixing=None):
        manifold = components if isinstance(components, ProductManifold) else \
            ProductManifold([_component(item) for item in components])
        super().__init__(manifold.dim, manifold, temperature)
        n = len(manifold.components)
        self.mixing = np.ones(n) if mixing is None else np.asarray(mixing, dtype=np.float64)
        if self.mixing.shape != (n,) or np.any(self.mixing < 0) or \
                not np.all(np.isfinite(self.mixing)):
            raise InvalidConfig(f"mixing must be {n} finite weights >= 0, got {mixing!r}")

    def _logits(self, q, k, eps):
        parts = self.manifold._component_dists(q[:, None, :], k[None, :, :], eps)
        total = 0.0
        for a, d in zip(self.mixing, parts):
            total = total + float(a) * d * d
        return -ad.sqrt(ad.maximum(total, MIN_NORM * MIN_NORM))[..., 0] / self.temperature

    def _formula(self, q, k, v, eps):
        m = self.manifold
        return super()._formula(m._project(q, eps), m._project(k, eps), m._project(v, eps), eps)


def _component(item):
    try:
        kind, dim, *rest = item
    except (TypeError, ValueError):
        raise InvalidConfig(f"component must be (kind, dim[, param]), got {item!r}") from None
    param = rest[0] if rest else 1.0
    if kind == "euclidean":
        return Euclidean(), dim
    if kind == "hyperbolic":
        return PoincareBall(param), dim
    if kind == "spherical":
        return Sphere(param), dim
    raise InvalidConfig(f"component kind must be euclidean, hyperbolic or spherical, "
                        f"got {kind!r}")
