import numpy as np
import pytest


def clustered(rng, n, dim, clusters=20, spread=3.0):
    centers = rng.standard_normal((clusters, dim)) * spread
    return (centers[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim))).astype(np.float32)


def brute_force(X, ids, q, k, metric):
    X64, q64 = X.astype(np.float64), q.astype(np.float64)
    if metric == "l2":
        d = ((q64[:, None, :] - X64[None]) ** 2).sum(-1)
    elif metric == "cosine":
        d = 1 - (q64 @ X64.T) / np.outer(np.linalg.norm(q64, axis=1), np.linalg.norm(X64, axis=1))
    else:
        d = 1 - q64 @ X64.T
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(d, order, 1)


def recall(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)])


@pytest.fixture
def data(rng):
    return clustered(rng, 3000, 24)
