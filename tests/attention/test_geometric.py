"""Hyperbolic, spherical and mixed-curvature attention against NumPy references; gradients
against finite differences."""
import numpy as np
import pytest

from ruvector import DimensionMismatch, InvalidConfig, InvalidInput
from ruvector.attention.geometric import (HyperbolicAttention, MixedCurvatureAttention,
                                          SphericalAttention)
from ruvector.attention.manifolds import PoincareBall, Sphere
from tests.conftest import finite_difference


def ball(rng, shape, scale=0.5):
    x = rng.standard_normal(shape)
    return x * scale * rng.uniform(0.1, 1, shape[:-1] + (1,)) / np.linalg.norm(x, axis=-1,
                                                                               keepdims=True)


def reference(q, K, V, c, t, aggregation):
    """Plain NumPy loops over the documented formulas (float64)."""
    B = PoincareBall(c)
    out, W = [], []
    for qi in q:
        d = np.array([B.dist(qi, k) for k in K])
        w = np.exp(-(d - d.min()) / t)
        w /= w.sum()
        if aggregation == "tangent":
            u = sum(wj * B.logmap(qi, vj) for wj, vj in zip(w, V))
            o = B.expmap(qi, u)
        else:
            kl = 2 * V / (1 + c * np.sum(V * V, axis=1, keepdims=True))
            g = 1 / np.sqrt(1 - c * np.sum(kl * kl, axis=1))
            m = (w * g) @ kl / np.sum(w * g)
            o = m / (1 + np.sqrt(1 - c * m @ m))
        out.append(o)
        W.append(w)
    return np.array(out), np.array(W)


@pytest.mark.parametrize("aggregation", ["tangent", "einstein"])
@pytest.mark.parametrize("c, t", [(1.0, 1.0), (0.5, 0.3), (2.0, 2.0)])
def test_hyperbolic_kernel_matches_reference(rng, aggregation, c, t):
    q, K, V = (ball(rng, s, 0.6 / np.sqrt(c)) for s in ((4, 6), (9, 6), (9, 6)))
    att = HyperbolicAttention(6, c=c, temperature=t, aggregation=aggregation)
    out = att.forward(q, K, V)
    ref, W = reference(q, K, V, c, t, aggregation)
    assert np.allclose(out, ref, atol=1e-10)
    assert np.allclose(att.get_attention_weights(), W, atol=1e-12)
    assert np.allclose(att.compute_manifold_weights(q[0], K), W[0], atol=1e-12)
    out32 = att.forward(q.astype(np.float32), K.astype(np.float32), V.astype(np.float32))
    assert out32.dtype == np.float32 and np.allclose(out32, ref, atol=1e-4)
    assert np.all(np.linalg.norm(out, axis=1) < 1 / np.sqrt(c))


def test_frechet_mean_is_stationary(rng):
    q, K, V = ball(rng, (3, 4)), ball(rng, (7, 4)), ball(rng, (7, 4))
    att = HyperbolicAttention(4, aggregation="frechet", tol=1e-12, max_iter=200)
    out = att.forward(q, K, V)
    W = att.get_attention_weights()
    B = PoincareBall()
    for i in range(3):
        grad = sum(w * B.logmap(out[i], v) for w, v in zip(W[i], V))
        assert np.linalg.norm(grad) < 1e-9
    # the weighted Fréchet mean of one point is that point
    one = att.forward(q[:1], K[:1], V[:1])
    assert np.allclose(one[0], V[0], atol=1e-9)
    with pytest.raises(InvalidConfig, match="frechet"):
        att.backward(np.ones_like(out))


@pytest.mark.parametrize("make", [
    lambda: HyperbolicAttention(4, c=0.8, temperature=0.7, aggregation="tangent"),
    lambda: HyperbolicAttention(4, c=1.5, temperature=1.3, aggregation="einstein"),
    lambda: SphericalAttention(4, radius=1.5, temperature=0.5),
    lambda: MixedCurvatureAttention([("euclidean", 2), ("hyperbolic", 2, 1.0)],
                                    mixing=[0.5, 2.0]),
])
def test_backward_matches_finite_differences(rng, make):
    att = make()
    q, K, V = ball(rng, (2, 4), 0.5), ball(rng, (5, 4), 0.5), ball(rng, (5, 4), 0.5)
    G = rng.standard_normal((2, 4))
    att.forward(q, K, V)
    dq, dk, dv = att.backward(G)
    loss = lambda: np.sum(att.forward(q, K, V) * G)           # noqa: E731
    assert np.allclose(dq, finite_difference(loss, q), atol=1e-6)
    assert np.allclose(dk, finite_difference(loss, K), atol=1e-6)
    assert np.allclose(dv, finite_difference(loss, V), atol=1e-6)


def test_spherical_and_mixed_against_numpy(rng):
    S = Sphere(2.0)
    q, K, V = (S.project(rng.standard_normal(s)) for s in ((3, 5), (6, 5), (6, 5)))
    att = SphericalAttention(5, radius=2.0, temperature=0.4)
    out = att.forward(q, K, V)
    for i in range(3):
        d = np.array([S.dist(q[i], k) for k in K])
        w = np.exp(-d / 0.4) / np.exp(-d / 0.4).sum()
        o = S.expmap(q[i], sum(wj * S.logmap(q[i], vj) for wj, vj in zip(w, V)))
        assert np.allclose(out[i], o, atol=1e-10)
    assert np.allclose(np.linalg.norm(out, axis=1), 2.0)
    mix = MixedCurvatureAttention([("euclidean", 2), ("hyperbolic", 3, 1.0), ("spherical", 2)],
                                  temperature=0.5, mixing=[1.0, 0.0, 2.0])
    q = np.concatenate([rng.standard_normal((2, 2)), ball(rng, (2, 3)),
                        Sphere().project(rng.standard_normal((2, 2)))], axis=1)
    K = np.concatenate([rng.standard_normal((4, 2)), ball(rng, (4, 3)),
                        Sphere().project(rng.standard_normal((4, 2)))], axis=1)
    w = mix.compute_manifold_weights(q, K)
    d2 = np.array([[np.sum((a[:2] - b[:2]) ** 2) + 2 * Sphere().dist(a[5:], b[5:]) ** 2
                    for b in K] for a in q])
    ref = np.exp(-np.sqrt(d2) / 0.5)
    assert np.allclose(w, ref / ref.sum(axis=1, keepdims=True), atol=1e-10)
    out = mix.forward(q, K, K)
    assert np.all(np.linalg.norm(out[:, 2:5], axis=1) < 1)
    assert np.allclose(np.linalg.norm(out[:, 5:], axis=1), 1)


def test_seed_api_batch_and_errors(rng):
    att = HyperbolicAttention(3)
    q, K, V = ball(rng, (2, 4, 3)), ball(rng, (2, 5, 3)), ball(rng, (2, 5, 3))
    out = att.forward_batch(q, K, V)
    assert out.shape == (2, 4, 3)
    assert np.allclose(out[1], att.forward(q[1], K[1], V[1]))
    single = att.forward(q[0, 0], K[0], V[0])
    assert single.shape == (3,)
    B = PoincareBall()
    assert np.allclose(att.exp_map(q[0, 0], att.project_tangent(V[0, 0], q[0, 0])), V[0, 0])
    assert np.allclose(att.project_tangent(V[0, 0], q[0, 0]), B.logmap(q[0, 0], V[0, 0]))
    with pytest.raises(DimensionMismatch):
        att.forward(q[0], K[0][:, :2], V[0])
    with pytest.raises(DimensionMismatch):
        att.forward(q[0], K[0], V[0][:3])
    with pytest.raises(InvalidInput):
        HyperbolicAttention(3, strict=True).forward(np.array([2.0, 0, 0]), K[0], V[0])
    for bad in ({"c": 0}, {"temperature": -1}, {"aggregation": "median"}):
        with pytest.raises(InvalidConfig):
            HyperbolicAttention(3, **bad)
    with pytest.raises(InvalidConfig):
        HyperbolicAttention(3).backward(np.ones(3))
    outside = np.array([[3.0, 0.0, 0.0]])
    assert np.all(np.isfinite(att.forward(outside, outside, outside)))


@pytest.mark.parametrize("aggregation", ["tangent", "einstein", "frechet"])
def test_nan_inputs_raise_named_errors(rng, aggregation):
    q, K, V = ball(rng, (2, 3)), ball(rng, (6, 3)), ball(rng, (6, 3))
    att = HyperbolicAttention(3, aggregation=aggregation)
    for which, name in enumerate(("query", "key", "value")):
        arrays = [q.copy(), K.copy(), V.copy()]
        arrays[which][1, 1] = np.nan if which != 1 else np.inf
        with pytest.raises(InvalidInput, match=name):
            att.forward(*arrays)
