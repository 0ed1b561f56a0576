import numpy as np
import pytest

from ruvector import DimensionMismatch
from ruvector.index import AttentionDistance
from tests.conftest import finite_difference, rel_error


def test_identity_projection_is_the_dot_product(rng):
    d = AttentionDistance.identity(6)
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((5, 6))
    np.testing.assert_allclose(d.pairwise(a, b), a @ b.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d.similarity(a[0], b[0]), a[0] @ b[0], rtol=1e-5)
    np.testing.assert_allclose(d.distance(a[:2], b[:2]), -(a[:2] * b[:2]).sum(1), rtol=1e-5)


def test_formula_with_heads(rng):
    d = AttentionDistance(5, proj_dim=3, heads=2, seed=1)
    a, b = rng.standard_normal(5), rng.standard_normal(5)
    wq, wk = d.w_q.astype(np.float64), d.w_k.astype(np.float64)
    ref = np.mean([(a @ wq[:, h * 3:(h + 1) * 3]) @ (b @ wk[:, h * 3:(h + 1) * 3]) / np.sqrt(3)
                   for h in range(2)])
    np.testing.assert_allclose(d.similarity(a, b), ref, rtol=1e-5)
    np.testing.assert_allclose(d.transform_queries(a) @ b, ref, rtol=1e-5)
    assert set(d.parameters()) == {"w_q", "w_k"} and d.w_q.shape == (5, 6)


def test_backward_against_finite_differences(rng):
    d = AttentionDistance(4, proj_dim=3, heads=2, seed=2, dtype=np.float64)
    A, B = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    G = rng.standard_normal((3, 5))

    def loss():
        return float((d.pairwise(A, B) * G).sum())

    loss()
    dA, dB = d.backward(G)
    assert rel_error(dA, finite_difference(loss, A)) < 1e-6
    assert rel_error(dB, finite_difference(loss, B)) < 1e-6
    for name, p in d.parameters().items():
        assert rel_error(d.grads[name], finite_difference(loss, p)) < 1e-6


def test_errors(rng):
    d = AttentionDistance(4)
    with pytest.raises(DimensionMismatch):
        d.pairwise(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(DimensionMismatch):
        d.similarity(np.ones((2, 4)), np.ones((3, 4)))
