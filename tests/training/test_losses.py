"""Every loss gradient against central finite differences in float64."""
import numpy as np
import pytest

from ruvector import DimensionMismatch, InvalidInput
from ruvector.training import cross_entropy, info_nce, mse_loss, triplet_margin_loss
from tests.conftest import finite_difference


def fd_check(f, args, grads, which):
    """grads == central differences of f(*args) with respect to args[which]."""
    num = finite_difference(lambda: f(*args), args[which])
    assert np.allclose(grads, num, rtol=1e-5, atol=1e-7), np.abs(grads - num).max()


def test_mse_with_mask(rng):
    p, t = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    mask = np.array([True, False, True, True, False])
    loss, g = mse_loss(p, t, mask)
    assert loss == pytest.approx(((p - t)[mask] ** 2).mean())
    fd_check(lambda a, b: mse_loss(a, b, mask)[0], [p, t], g, 0)
    assert np.all(g[~mask] == 0)


def test_cross_entropy_with_mask(rng):
    z = rng.standard_normal((6, 4)) * 3
    y = np.array([0, 3, 1, 2, 2, 0])
    mask = np.array([True, True, False, True, False, True])
    loss, g = cross_entropy(z, y, mask)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    assert loss == pytest.approx(-logp[mask, y[mask]].mean())
    fd_check(lambda a: cross_entropy(a, y, mask)[0], [z], g, 0)
    assert cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))[0] == pytest.approx(1000.0)
    with pytest.raises(InvalidInput):
        cross_entropy(z, np.array([0, 4, 1, 2, 2, 0]))
    with pytest.raises(InvalidInput):
        cross_entropy(z, y, np.zeros(6, bool))


def test_info_nce_in_batch_and_explicit(rng):
    a, p = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss, da, dp = info_nce(a, p, temperature=0.5)
    logits = a @ p.T / 0.5
    ref = -np.mean(np.diag(logits - np.log(np.exp(logits).sum(1, keepdims=True))))
    assert loss == pytest.approx(ref)
    fd_check(lambda x, y: info_nce(x, y, temperature=0.5)[0], [a, p], da, 0)
    fd_check(lambda x, y: info_nce(x, y, temperature=0.5)[0], [a, p], dp, 1)
    n = rng.standard_normal((4, 5, 3))
    loss, da, dp, dn = info_nce(a, p, n, temperature=0.3)
    f = lambda x, y, z: info_nce(x, y, z, temperature=0.3)[0]  # noqa: E731
    fd_check(f, [a, p, n], da, 0)
    fd_check(f, [a, p, n], dp, 1)
    fd_check(f, [a, p, n], dn, 2)
    with pytest.raises(DimensionMismatch):
        info_nce(a, p, n[:, :, :2])


def test_triplet_margin(rng):
    a, p, n = (rng.standard_normal((6, 4)) for _ in range(3))
    loss, da, dp, dn = triplet_margin_loss(a, p, n, margin=1.5)
    ref = np.maximum(np.linalg.norm(a - p, axis=1) - np.linalg.norm(a - n, axis=1) + 1.5, 0)
    assert loss == pytest.approx(ref.mean(), rel=1e-5)
    f = lambda x, y, z: triplet_margin_loss(x, y, z, margin=1.5)[0]  # noqa: E731
    fd_check(f, [a, p, n], da, 0)
    fd_check(f, [a, p, n], dp, 1)
    fd_check(f, [a, p, n], dn, 2)


def test_gradients_keep_float32(rng):
    p = rng.standard_normal((3, 2)).astype(np.float32)
    assert mse_loss(p, np.zeros((3, 2)))[1].dtype == np.float32
    assert cross_entropy(p, np.array([0, 1, 0]))[1].dtype == np.float32
