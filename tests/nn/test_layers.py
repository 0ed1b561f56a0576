import numpy as np
import pytest

from ruvector import DimensionMismatch, InvalidConfig, InvalidInput, LayerNorm, Linear
from tests.conftest import finite_difference, rel_error


def test_linear_forward_and_backward(rng):
    lin = Linear(5, 3, seed=0, dtype=np.float64)
    lin.bias[:] = rng.standard_normal(3)
    x = rng.standard_normal((2, 4, 5))
    np.testing.assert_allclose(lin.forward(x), x @ lin.weight + lin.bias)
    w = rng.standard_normal((2, 4, 3))

    def loss():
        return float((lin.forward(x) * w).sum())

    loss()
    gx = lin.backward(w)
    assert rel_error(gx, finite_difference(loss, x)) < 1e-6
    for name, p in lin.parameters().items():
        assert rel_error(lin.grads[name], finite_difference(loss, p)) < 1e-6


def test_layernorm_forward_and_backward(rng):
    ln = LayerNorm(6, dtype=np.float64)
    ln.weight[:] = rng.standard_normal(6)
    ln.bias[:] = rng.standard_normal(6)
    x = rng.standard_normal((3, 6)) * 3 + 1
    y = ln.forward(x)
    xhat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, xhat * ln.weight + ln.bias, rtol=1e-12)
    w = rng.standard_normal((3, 6))

    def loss():
        return float((ln.forward(x) * w).sum())

    loss()
    gx = ln.backward(w)
    assert rel_error(gx, finite_difference(loss, x)) < 1e-5
    for name, p in ln.parameters().items():
        assert rel_error(ln.grads[name], finite_difference(loss, p)) < 1e-5


def test_layer_errors(rng):
    lin = Linear(4, 2)
    with pytest.raises(DimensionMismatch):
        lin.forward(np.ones((3, 5)))
    with pytest.raises(InvalidInput):
        lin.forward(np.full((3, 4), np.nan))
    with pytest.raises(InvalidConfig, match="before forward"):
        Linear(4, 2).backward(np.ones((3, 2)))
    lin.forward(np.ones((3, 4)))
    with pytest.raises(DimensionMismatch):
        lin.backward(np.ones((3, 3)))
    with pytest.raises(InvalidConfig):
        Linear(0, 2)
    with pytest.raises(InvalidConfig):
        LayerNorm(4, eps=0)
