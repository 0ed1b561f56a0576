import numpy as np
import pytest

from ruvector.nn import matmul as _matmul


@pytest.mark.parametrize("parallel", [False, True])
def test_matmul_paths_match_numpy(rng, monkeypatch, parallel):
    if parallel:
        monkeypatch.setattr(_matmul, "PARALLEL_MIN_FLOPS", 0)
        monkeypatch.setattr(_matmul, "num_workers", lambda: 3)
    a = rng.standard_normal((2, 101, 7)).astype(np.float32)
    b = rng.standard_normal((7, 5)).astype(np.float32)
    c = rng.standard_normal((2, 101, 5)).astype(np.float32)
    np.testing.assert_allclose(_matmul.matmul(a, b), a @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_matmul.matmul(a, b.T.copy().T), a @ b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_matmul.matmul_tn(a, c),
                               a.reshape(-1, 7).T @ c.reshape(-1, 5), rtol=1e-4, atol=1e-4)
    few = a[0, :2]  # fewer rows than workers: empty row ranges
    np.testing.assert_allclose(_matmul.matmul_tn(few, c[0, :2]), few.T @ c[0, :2], rtol=1e-5,
                               atol=1e-5)
