"""Manifold laws (float64 and float32 tolerances), limits, boundary behaviour, gradients."""
import numpy as np
import pytest

from ruvector import DimensionMismatch, InvalidConfig, InvalidInput
from ruvector.attention.manifolds import Euclidean, PoincareBall, ProductManifold, Sphere
from tests.conftest import finite_difference

TOL = {np.float64: 1e-9, np.float32: 2e-4}


def ball_points(rng, n, d, scale=0.4, dtype=np.float64):
    x = rng.standard_normal((n, d))
    x *= scale * rng.uniform(0.05, 1.0, (n, 1)) / np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("c", [0.5, 1.0, 2.0])
def test_poincare_laws(rng, dtype, c):
    B = PoincareBall(c)
    r = 1 / np.sqrt(c)
    x, y = ball_points(rng, 20, 5, 0.9 * r, dtype), ball_points(rng, 20, 5, 0.9 * r, dtype)
    tol = TOL[dtype]
    assert B.mobius_add(x, y).dtype == dtype
    assert np.allclose(B.mobius_add(-x, B.mobius_add(x, y)), y, atol=tol * 10)
    assert np.allclose(B.expmap(x, B.logmap(x, y)), y, atol=tol * 10)
    u = B.logmap(x, y)
    assert np.allclose(B.dist(x, y), np.sqrt(B.inner(x, u, u)), rtol=tol * 10)
    assert np.allclose(B.dist(x, y), B.dist(y, x), rtol=tol)
    n = np.linalg.norm(x.astype(np.float64), axis=1)
    assert np.allclose(B.dist(np.zeros_like(x), x), 2 / np.sqrt(c) * np.arctanh(np.sqrt(c) * n),
                       rtol=tol * 10)
    assert np.allclose(B.expmap0(B.logmap0(y)), y, atol=tol * 10)
    assert np.allclose(B.mobius_scalar_mul(2.0, x), B.mobius_add(x, x), atol=tol * 10)
    assert np.allclose(B.lambda_x(x), 2 / (1 - c * n ** 2), rtol=tol * 10)
    g = rng.standard_normal(x.shape)
    assert np.allclose(B.egrad2rgrad(x, g), g / B.lambda_x(x)[:, None] ** 2, rtol=tol * 10)


def test_poincare_c_to_zero_is_euclidean(rng):
    B = PoincareBall(1e-10)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    assert np.allclose(B.mobius_add(x, y), x + y, atol=1e-6)
    assert np.allclose(B.expmap(x, y), x + y, atol=1e-6)
    assert np.allclose(B.logmap(x, y), y - x, atol=1e-6)
    assert np.allclose(B.dist(x, y), 2 * np.linalg.norm(x - y, axis=1), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_boundary_origin_huge_vectors_stay_finite(dtype):
    B = PoincareBall(1.0)
    eps = 4e-3 if dtype == np.float32 else 1e-5
    edge = np.array([[1.0, 0.0], [0.0, -1.0]], dtype)        # on the boundary
    outside = np.array([[3.0, 4.0]], dtype)
    assert np.all(np.linalg.norm(B.project(outside), axis=1) <= 1 - eps + 1e-7)
    huge = np.array([[1e30, -1e30]], dtype)
    out = B.expmap(np.zeros((1, 2), dtype), huge)
    assert np.all(np.isfinite(out)) and np.linalg.norm(out) <= 1 - eps + 1e-6
    for value in (B.dist(edge[:1], edge[1:]), B.logmap(edge[:1], edge[1:]),
                  B.logmap0(np.zeros((1, 2), dtype)), B.dist(np.zeros((1, 2)), np.zeros((1, 2)))):
        assert np.all(np.isfinite(value))
    dx, dy = B.dist_backward(edge[:1], edge[1:], np.ones(1))
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(dy))
    dx, du = B.expmap_backward(np.zeros((1, 2)), huge.astype(np.float64), np.ones((1, 2)))
    assert np.all(np.isfinite(dx)) and np.all(np.isfinite(du))


def test_poincare_gradients_match_finite_differences(rng):
    B = PoincareBall(1.3)
    x, y = ball_points(rng, 3, 4, 0.6), ball_points(rng, 3, 4, 0.6)
    u = rng.standard_normal((3, 4)) * 0.5
    w = rng.standard_normal(3)
    G = rng.standard_normal((3, 4))
    dx, dy = B.dist_backward(x, y, w)
    assert np.allclose(dx, finite_difference(lambda: np.sum(B.dist(x, y) * w), x), atol=1e-6)
    assert np.allclose(dy, finite_difference(lambda: np.sum(B.dist(x, y) * w), y), atol=1e-6)
    dx, du = B.expmap_backward(x, u, G)
    assert np.allclose(dx, finite_difference(lambda: np.sum(B.expmap(x, u) * G), x), atol=1e-6)
    assert np.allclose(du, finite_difference(lambda: np.sum(B.expmap(x, u) * G), u), atol=1e-6)
    dx, dy = B.logmap_backward(x, y, G)
    assert np.allclose(dx, finite_difference(lambda: np.sum(B.logmap(x, y) * G), x), atol=1e-6)
    assert np.allclose(dy, finite_difference(lambda: np.sum(B.logmap(x, y) * G), y), atol=1e-6)


def test_strict_mode_and_bad_config():
    with pytest.raises(InvalidInput, match="outside"):
        PoincareBall(1.0, strict=True).dist(np.array([[2.0, 0.0]]), np.zeros((1, 2)))
    for bad in (0.0, -1.0, np.nan):
        with pytest.raises(InvalidConfig):
            PoincareBall(bad)
    with pytest.raises(DimensionMismatch):
        PoincareBall().dist(np.zeros((1, 2)), np.zeros((1, 3)))
    with pytest.raises(InvalidInput):
        PoincareBall().dist(np.array([[np.nan, 0]]), np.zeros((1, 2)))


@pytest.mark.parametrize("radius", [1.0, 2.5])
def test_sphere_laws(rng, radius):
    S = Sphere(radius)
    x, y = S.project(rng.standard_normal((10, 4))), S.project(rng.standard_normal((10, 4)))
    assert np.allclose(np.linalg.norm(x, axis=1), radius)
    assert np.allclose(S.expmap(x, S.logmap(x, y)), y, atol=1e-8)
    cos = np.sum(x * y, axis=1) / radius ** 2
    assert np.allclose(S.dist(x, y), radius * np.arccos(np.clip(cos, -1, 1)))
    assert np.allclose(np.linalg.norm(S.logmap(x, y), axis=1), S.dist(x, y))
    assert np.allclose(S.dist(x, y), S.dist(y, x))
    with pytest.raises(InvalidInput):
        S.project(np.zeros((1, 4)))


def test_euclidean_and_product(rng):
    E = Euclidean()
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    assert np.allclose(E.dist(x, y), np.linalg.norm(x - y, axis=1))
    assert np.allclose(E.expmap(x, E.logmap(x, y)), y)
    P = ProductManifold([(Euclidean(), 2), (PoincareBall(1.0), 3), (Sphere(1.0), 3)])
    a = np.concatenate([rng.standard_normal((5, 2)), ball_points(rng, 5, 3, 0.5),
                        Sphere().project(rng.standard_normal((5, 3)))], axis=1)
    b = np.concatenate([rng.standard_normal((5, 2)), ball_points(rng, 5, 3, 0.5),
                        Sphere().project(rng.standard_normal((5, 3)))], axis=1)
    parts = [Euclidean().dist(a[:, :2], b[:, :2]), PoincareBall().dist(a[:, 2:5], b[:, 2:5]),
             Sphere().dist(a[:, 5:], b[:, 5:])]
    assert np.allclose(P.dist(a, b), np.sqrt(sum(p ** 2 for p in parts)))
    assert np.allclose(P.expmap(a, P.logmap(a, b)), b, atol=1e-8)
    assert [s.shape[-1] for s in P.split(a)] == [2, 3, 3]
    with pytest.raises(DimensionMismatch):
        P.dist(a[:, :4], b[:, :4])
    with pytest.raises(InvalidConfig):
        ProductManifold([])
