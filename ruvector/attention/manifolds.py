"""Riemannian manifolds for geometric attention: Poincaré ball, sphere, Euclidean space and
their products.  Vectorised over leading dimensions (the last axis is the coordinate axis),
float32 or float64 in and out, evaluated in float64.

Poincaré ball of curvature -c (Ganea, Bécigneul & Hofmann 2018), sc = sqrt(c):

    x ⊕ y       = ((1 + 2c<x,y> + c|y|²) x + (1 - c|x|²) y) / (1 + 2c<x,y> + c²|x|²|y|²)
    r ⊗ x       = tanh(r artanh(sc|x|)) x / (sc|x|)
    λ_x         = 2 / (1 - c|x|²)
    exp_x(u)    = x ⊕ tanh(sc λ_x |u| / 2) u / (sc|u|)
    log_x(y)    = 2 / (sc λ_x) artanh(sc|-x ⊕ y|) (-x ⊕ y) / |-x ⊕ y|
    d(x, y)     = 2 / sc artanh(sc |-x ⊕ y|)
    <u, v>_x    = λ_x² <u, v>,   rgrad = egrad / λ_x²

Numerics: norms are clamped below by 1e-15, artanh arguments to [0, 1 - 1e-15], and every
result point is projected to norm <= (1 - eps)/sc with eps = 4e-3 (float32 input) or 1e-5
(float64 input), so boundary points, the origin and huge tangent vectors give finite
results.  Points outside the ball are projected (``strict=True`` rejects them instead).

The formulas are written with :mod:`ruvector.attention._autodiff`, so the same code gives
gradients (``*_backward`` methods and the geometric layers' backward passes).
"""
import numpy as np

from .._validate import as_array, finite_number, integer
from ..errors import DimensionMismatch, InvalidConfig, InvalidInput
from . import _autodiff as ad

MIN_NORM = 1e-15
ARTANH_MAX = 1.0 - 1e-15
BALL_EPS = {np.dtype(np.float32): 4e-3, np.dtype(np.float64): 1e-5}


class Manifold:
    """Shared plumbing: inputs to float64 (or Tensors), results back to the input dtype."""

    name = "manifold"

    def _in(self, x, name):
        if isinstance(x, ad.Tensor):
            return x, None
        arr = as_array(x, name, dtype=None if _is_float(x) else np.float64, ndim=None)
        if arr.ndim == 0:
            raise DimensionMismatch(f"{name} must have at least one axis")
        return arr.astype(np.float64), arr.dtype if arr.dtype in BALL_EPS else np.dtype(np.float64)

    @staticmethod
    def _out(value, dtype):
        return value if dtype is None else np.asarray(value, dtype=dtype)

    def _eps(self, dtype):
        return BALL_EPS[np.dtype(np.float64) if dtype is None else dtype]

    def _pair(self, x, y, nx="x", ny="y"):
        (xv, dt), (yv, _) = self._in(x, nx), self._in(y, ny)
        if ad.value(xv).shape[-1] != ad.value(yv).shape[-1]:
            raise DimensionMismatch(f"{nx} {ad.value(xv).shape} and {ny} "
                                    f"{ad.value(yv).shape} have different widths")
        return xv, yv, dt

    def backward(self, fn, grad_out, *args):
        """Gradients of sum(fn(*args) * grad_out) with respect to each array argument."""
        tensors = [ad.Tensor(np.asarray(a, dtype=np.float64)) for a in args]
        out = fn(*tensors)
        return ad.grad(out, tensors, np.asarray(grad_out, dtype=np.float64))


def _is_float(x):
    return getattr(x, "dtype", None) in BALL_EPS


class PoincareBall(Manifold):
    """The Poincaré ball {|x| < 1/sqrt(c)} of curvature -c."""

    name = "poincare"

    def __init__(self, c=1.0, *, strict=False):
        self.c = finite_number(c, "c", positive=True)
        self.sc = float(np.sqrt(self.c))
        self.strict = bool(strict)

    # -- internal formulas (float64 arrays or Tensors) -----------------------------------------
    def _project(self, x, eps):
        n = ad.norm(x, MIN_NORM)
        limit = (1.0 - eps) / self.sc
        return ad.where(ad.value(n) > limit, x * (limit / n), x)

    def _mobius_add(self, x, y, eps):
        c = self.c
        xy, x2, y2 = ad.dot(x, y), ad.dot(x, x), ad.dot(y, y)
        num = (1.0 + 2.0 * c * xy + c * y2) * x + (1.0 - c * x2) * y
        den = ad.maximum(1.0 + 2.0 * c * xy + c * c * x2 * y2, MIN_NORM)
        return self._project(num / den, eps)

    def _artanh(self, z):
        return ad.artanh(ad.clip(z, 0.0, ARTANH_MAX))

    def _lambda(self, x):
        return 2.0 / ad.maximum(1.0 - self.c * ad.dot(x, x), MIN_NORM)

    def _expmap(self, x, u, eps):
        un = ad.norm(u, MIN_NORM)
        second = ad.tanh(self.sc * self._lambda(x) * un / 2.0) * u / (self.sc * un)
        return self._mobius_add(x, self._project(second, eps), eps)

    def _logmap(self, x, y, eps):
        sub = self._mobius_add(-x, y, eps)
        sn = ad.norm(sub, MIN_NORM)
        return 2.0 / (self.sc * self._lambda(x)) * self._artanh(self.sc * sn) * sub / sn

    def _expmap0(self, u, eps):
        un = ad.norm(u, MIN_NORM)
        return self._project(ad.tanh(self.sc * un) * u / (self.sc * un), eps)

    def _logmap0(self, y):
        yn = ad.norm(y, MIN_NORM)
        return self._artanh(self.sc * yn) * y / (self.sc * yn)

    def _dist(self, x, y, eps):
        sn = ad.norm(self._mobius_add(-x, y, eps), MIN_NORM)
        return (2.0 / self.sc) * self._artanh(self.sc * sn)

    def _points(self, x, dt, name):
        """Project (or, strict, reject) points outside the ball."""
        v = ad.value(x)
        if self.strict:
            n = np.linalg.norm(v, axis=-1)
            if np.any(n >= 1.0 / self.sc):
                raise InvalidInput(f"{name} has points outside the ball of radius "
                                   f"{1.0 / self.sc:g} (max norm {n.max():g}); strict=True")
        return self._project(x, self._eps(dt))

    # -- public API ------------------------------------------------------------------------------
    def project(self, x):
        """Points scaled back to norm <= (1 - eps)/sqrt(c)."""
        xv, dt = self._in(x, "x")
        return self._out(self._project(xv, self._eps(dt)), dt)

    def mobius_add(self, x, y):
        x, y, dt = self._pair(x, y)
        eps = self._eps(dt)
        return self._out(self._mobius_add(self._points(x, dt, "x"), self._points(y, dt, "y"),
                                          eps), dt)

    def mobius_scalar_mul(self, r, x):
        xv, dt = self._in(x, "x")
        xv = self._points(xv, dt, "x")
        r = np.asarray(r, dtype=np.float64)
        if r.ndim:
            r = r[..., None]
        n = ad.norm(xv, MIN_NORM)
        out = ad.tanh(r * self._artanh(self.sc * n)) * xv / (self.sc * n)
        return self._out(self._project(out, self._eps(dt)), dt)

    def lambda_x(self, x):
        xv, dt = self._in(x, "x")
        return self._out(self._lambda(self._points(xv, dt, "x"))[..., 0], dt)

    def inner(self, x, u, v):
        xv, dt = self._in(x, "x")
        lam = self._lambda(self._points(xv, dt, "x"))
        uv = ad.dot(self._in(u, "u")[0], self._in(v, "v")[0])
        return self._out((lam * lam * uv)[..., 0], dt)

    def egrad2rgrad(self, x, g):
        xv, dt = self._in(x, "x")
        lam = self._lambda(self._points(xv, dt, "x"))
        return self._out(self._in(g, "g")[0] / (lam * lam), dt)

    def expmap(self, x, u):
        x, u, dt = self._pair(x, u, "x", "u")
        return self._out(self._expmap(self._points(x, dt, "x"), u, self._eps(dt)), dt)

    def logmap(self, x, y):
        x, y, dt = self._pair(x, y)
        return self._out(self._logmap(self._points(x, dt, "x"), self._points(y, dt, "y"),
                                      self._eps(dt)), dt)

    def expmap0(self, u):
        uv, dt = self._in(u, "u")
        return self._out(self._expmap0(uv, self._eps(dt)), dt)

    def logmap0(self, y):
        yv, dt = self._in(y, "y")
        return self._out(self._logmap0(self._points(yv, dt, "y")), dt)

    def dist(self, x, y):
        """Geodesic distance (shape without the last axis)."""
        x, y, dt = self._pair(x, y)
        d = self._dist(self._points(x, dt, "x"), self._points(y, dt, "y"), self._eps(dt))
        return self._out(ad.value(d)[..., 0], dt)

    def to_klein(self, x):
        """Poincaré -> Klein coordinates: 2x / (1 + c|x|²)."""
        return 2.0 * x / (1.0 + self.c * ad.dot(x, x))

    def from_klein(self, k):
        """Klein -> Poincaré coordinates: k / (1 + sqrt(1 - c|k|²))."""
        return k / (1.0 + ad.sqrt(ad.maximum(1.0 - self.c * ad.dot(k, k), MIN_NORM)))

    # -- gradients -------------------------------------------------------------------------------
    def dist_backward(self, x, y, grad):
        """(dx, dy) of sum(dist(x, y) * grad)."""
        eps = self._eps(np.asarray(x).dtype if _is_float(x) else None)
        return self.backward(lambda a, b: self._dist(a, b, eps), np.asarray(grad)[..., None],
                             self.project(x), self.project(y))

    def expmap_backward(self, x, u, grad):
        """(dx, du) of sum(expmap(x, u) * grad)."""
        eps = self._eps(np.asarray(x).dtype if _is_float(x) else None)
        return self.backward(lambda a, b: self._expmap(a, b, eps), grad, self.project(x), u)

    def logmap_backward(self, x, y, grad):
        """(dx, dy) of sum(logmap(x, y) * grad)."""
        eps = self._eps(np.asarray(x).dtype if _is_float(x) else None)
        return self.backward(lambda a, b: self._logmap(a, b, eps), grad, self.project(x),
                             self.project(y))


class Sphere(Manifold):
    """The sphere |x| = radius (positive curvature 1/radius²)."""

    name = "sphere"

    def __init__(self, radius=1.0):
        self.radius = finite_number(radius, "radius", positive=True)

    def _project(self, x, eps=None):
        return self.radius * x / ad.norm(x, MIN_NORM)

    def _tangent(self, x, u):
        return u - ad.dot(u, x) / (self.radius ** 2) * x

    def _expmap(self, x, u, eps=None):
        R = self.radius
        ut = self._tangent(x, u)
        n = ad.norm(ut, MIN_NORM)
        return self._project(ad.cos(n / R) * x + R * ad.sin(n / R) * ut / n)

    def _dist(self, x, y, eps=None):
        R = self.radius
        cos = ad.clip(ad.dot(x, y) / (R * R), -1.0, 1.0)
        return R * ad.arccos(cos)

    def _logmap(self, x, y, eps=None):
        R = self.radius
        v = y - ad.dot(x, y) / (R * R) * x
        nv = ad.norm(v, MIN_NORM)
        return self._dist(x, y) * v / nv

    def project(self, x):
        xv, dt = self._in(x, "x")
        if np.any(np.linalg.norm(ad.value(xv), axis=-1) == 0):
            raise InvalidInput("cannot project the zero vector onto the sphere")
        return self._out(self._project(xv), dt)

    def expmap(self, x, u):
        x, u, dt = self._pair(x, u, "x", "u")
        return self._out(self._expmap(self._project(x), u), dt)

    def logmap(self, x, y):
        x, y, dt = self._pair(x, y)
        return self._out(self._logmap(self._project(x), self._project(y)), dt)

    def dist(self, x, y):
        x, y, dt = self._pair(x, y)
        return self._out(ad.value(self._dist(self._project(x), self._project(y)))[..., 0], dt)


class Euclidean(Manifold):
    """Flat space: exp_x(u) = x + u, log_x(y) = y - x, d = |x - y|."""

    name = "euclidean"

    def _project(self, x, eps=None):
        return x

    def _expmap(self, x, u, eps=None):
        return x + u

    def _logmap(self, x, y, eps=None):
        return y - x

    def _dist(self, x, y, eps=None):
        return ad.sqrt(ad.maximum(ad.dot(x - y, x - y), MIN_NORM * MIN_NORM))

    def project(self, x):
        xv, dt = self._in(x, "x")
        return self._out(xv, dt)

    def expmap(self, x, u):
        x, u, dt = self._pair(x, u, "x", "u")
        return self._out(x + u, dt)

    def logmap(self, x, y):
        x, y, dt = self._pair(x, y)
        return self._out(y - x, dt)

    def dist(self, x, y):
        x, y, dt = self._pair(x, y)
        return self._out(np.linalg.norm(ad.value(x) - ad.value(y), axis=-1), dt)


class ProductManifold(Manifold):
    """Product of manifolds over consecutive coordinate slices: ``[(manifold, dim), ...]``;
    d(x, y) = sqrt(sum_i d_i(x_i, y_i)²); exp/log/project act per component."""

    name = "product"

    def __init__(self, components):
        components = list(components)
        if not components:
            raise InvalidConfig("ProductManifold needs at least one component")
        self.components = []
        for item in components:
            try:
                manifold, dim = item
            except (TypeError, ValueError):
                raise InvalidConfig(f"components are (manifold, dim) pairs, got {item!r}") from None
            if not isinstance(manifold, Manifold):
                raise InvalidConfig(f"bad component {item!r}: {manifold!r} is not a Manifold")
            self.components.append((manifold, integer(dim, f"dimension of {item!r}", minimum=1)))
        self.dim = sum(d for _, d in self.components)
        self.slices = []
        start = 0
        for _, d in self.components:
            self.slices.append(slice(start, start + d))
            start += d

    def split(self, x):
        """Per-component views of the last axis."""
        if ad.value(x).shape[-1] != self.dim:
            raise DimensionMismatch(f"points have width {ad.value(x).shape[-1]}, the product "
                                    f"has {self.dim}")
        return [x[..., s] for s in self.slices]

    def _map(self, method, eps, *points):
        parts = [getattr(m, method)(*[p[..., s] for p in points], eps)
                 for (m, _), s in zip(self.components, self.slices)]
        return ad.concatenate(parts)

    def _project(self, x, eps):
        return self._map("_project", eps, x)

    def _expmap(self, x, u, eps):
        return self._map("_expmap", eps, x, u)

    def _logmap(self, x, y, eps):
        return self._map("_logmap", eps, x, y)

    def _component_dists(self, x, y, eps):
        return [m._dist(x[..., s], y[..., s], eps)
                for (m, _), s in zip(self.components, self.slices)]

    def _dist(self, x, y, eps):
        total = 0.0
        for d in self._component_dists(x, y, eps):
            total = total + d * d
        return ad.sqrt(ad.maximum(total, MIN_NORM * MIN_NORM))

    def project(self, x):
        xv, dt = self._in(x, "x")
        self.split(xv)
        return self._out(self._project(xv, self._eps(dt)), dt)

    def expmap(self, x, u):
        x, u, dt = self._pair(x, u, "x", "u")
        self.split(x)
        eps = self._eps(dt)
        return self._out(self._expmap(self._project(x, eps), u, eps), dt)

    def logmap(self, x, y):
        x, y, dt = self._pair(x, y)
        self.split(x)
        eps = self._eps(dt)
        return self._out(self._logmap(self._project(x, eps), self._project(y, eps), eps), dt)

    def dist(self, x, y):
        x, y, dt = self._pair(x, y)
        self.split(x)
        eps = self._eps(dt)
        d = self._dist(self._project(x, eps), self._project(y, eps), eps)
        return self._out(ad.value(d)[..., 0], dt)
