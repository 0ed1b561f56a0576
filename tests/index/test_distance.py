import numpy as np
import pytest

from ruvector import DimensionMismatch, InvalidInput
from ruvector.index import AttentionDistance
from tests.conftest import finite_difference, rel_error


def test_identity_projection_is_the_dot_product(rng):
    d = AttentionDistance.identity(6)
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((5, 6))
    np.testing.assert_allclose(d.pairwise(a, b), a @ b.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d.similarity(a[0], b[0]), a[0] @ b[0], rtol=1e-5)
    np.testing.assert_allclose(d.distance(a[:2], b[:2]), -(a[:2] * b[:2]).sum(1), rtol=1e-5)


@pytest.mark.parametrize("normalize", [True, False])
def test_formula_with_heads(rng, normalize):
    d = AttentionDistance(5, proj_dim=3, heads=2, seed=1, normalize=normalize)
    a, b = 3 * rng.standard_normal(5), 0.5 * rng.standard_normal(5)
    u, v = (a / np.linalg.norm(a), b / np.linalg.norm(b)) if normalize else (a, b)
    wq, wk = d.w_q.astype(np.float64), d.w_k.astype(np.float64)
    ref = np.mean([(u @ wq[:, h * 3:(h + 1) * 3]) @ (v @ wk[:, h * 3:(h + 1) * 3]) / np.sqrt(3)
                   for h in range(2)])
    np.testing.assert_allclose(d.similarity(a, b), ref, rtol=1e-5)
    q_t = d.transform_queries(a)[0]
    np.testing.assert_allclose(q_t @ b / (np.linalg.norm(b) if normalize else 1), ref,
                               rtol=1e-5)
    assert set(d.parameters()) == {"w_q", "w_k"} and d.w_q.shape == (5, 6)


@pytest.mark.parametrize("normalize", [True, False])
def test_backward_against_finite_differences(rng, normalize):
    d = AttentionDistance(4, proj_dim=3, heads=2, seed=2, dtype=np.float64, normalize=normalize)
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


def _digits_like(rng, n=600, classes=6, dim=16):
    """Class prototypes with pixel-like non-negative features of scale ~10."""
    protos = rng.uniform(0, 16, (classes, dim))
    y = rng.integers(0, classes, n)
    return np.clip(protos[y] + rng.normal(0, 4, (n, dim)), 0, None), y


def test_fit_on_raw_features_is_safe_and_keeps_the_best_epoch(rng):
    X, y = _digits_like(rng)
    pairs = [(i, j) for i in range(len(X)) for j in rng.choice(np.flatnonzero(y == y[i]), 1)]
    A, P = X[[i for i, _ in pairs]], X[[j for _, j in pairs]]
    d = AttentionDistance(16, seed=0)
    history = d.fit(A, P, epochs=30, lr=5e-3, temperature=0.1, patience=2, progress=False)
    assert np.isfinite(history).all() and history[0] < 10       # unit inputs: sane logits
    assert len(history.validation) == len(history) and history.best_epoch is not None
    assert history.validation[history.best_epoch] == min(history.validation)
    assert len(history) == 30 or len(history) - 1 - history.best_epoch == 2  # patience 2
    overfit = AttentionDistance(16, seed=0).fit(A[:60], P[:60], epochs=300, lr=0.05,
                                                batch_size=8, patience=3, progress=False)
    assert len(overfit) < 300 and len(overfit) - 1 - overfit.best_epoch == 3
    # the restored parameters are the best epoch's: their validation loss is the minimum
    held = np.sort(np.random.default_rng(0).permutation(len(A))[:round(0.1 * len(A))])
    S = d.pairwise(A[held], P[held]) / 0.1
    loss = float(np.mean(np.log(np.exp(S - S.max(1, keepdims=True)).sum(1))
                         + S.max(1) - np.diag(S)))
    np.testing.assert_allclose(loss, min(history.validation), rtol=1e-3)

    def nn_accuracy(dist):
        S = dist.pairwise(X, X)
        np.fill_diagonal(S, -np.inf)
        return float(np.mean(y[S.argmax(1)] == y))

    assert nn_accuracy(d) >= nn_accuracy(AttentionDistance(16, seed=0)) - 0.02
    assert nn_accuracy(d) >= 0.8
    with pytest.raises(InvalidInput, match="zero vectors"):
        d.pairwise(np.zeros((1, 16)), X[:2])
    all_epochs = AttentionDistance(16, seed=0).fit(A[:40], P[:40], epochs=3, validation=0,
                                                    progress=False)
    assert len(all_epochs) == 3 and all_epochs.validation == [] and all_epochs.best_epoch == 2
