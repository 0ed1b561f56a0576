"""Optimizers, schedulers and clipping against hand-computed values."""
import numpy as np
import pytest

from ruvector import InvalidConfig
from ruvector.training import (SGD, Adam, AdamW, CosineLR, LinearWarmup, StepLR,
                                         clip_grad_norm)
from ruvector.nn.module import Module


class Scalar(Module):
    """One parameter vector p; grads set by hand."""

    def __init__(self, value, dtype=np.float64):
        super().__init__(dtype)
        self._register("p", value)


def step_with(opt, grad):
    opt.module.grads["p"][...] = grad
    opt.step()
    return opt.module.p.copy()


def test_sgd_plain_momentum_nesterov_weight_decay():
    m = Scalar([1.0, -2.0])
    opt = SGD(m, lr=0.1)
    assert np.allclose(step_with(opt, [0.5, 1.0]), [0.95, -2.1])

    m = Scalar([1.0])
    opt = SGD(m, lr=0.1, momentum=0.9)
    assert np.allclose(step_with(opt, [1.0]), [0.9])            # b = g = 1
    assert np.allclose(step_with(opt, [1.0]), [0.9 - 0.1 * 1.9])  # b = 0.9 + 1

    m = Scalar([1.0])
    opt = SGD(m, lr=0.1, momentum=0.9, nesterov=True)
    assert np.allclose(step_with(opt, [1.0]), [1 - 0.1 * (1 + 0.9)])
    assert np.allclose(step_with(opt, [1.0]), [0.81 - 0.1 * (1 + 0.9 * 1.9)])

    m = Scalar([2.0])
    opt = SGD(m, lr=0.1, weight_decay=0.5)
    assert np.allclose(step_with(opt, [0.0]), [2.0 - 0.1 * 1.0])


def test_adam_bias_correction_and_l2():
    m = Scalar([1.0])
    opt = Adam(m, lr=0.1, betas=(0.9, 0.99), eps=1e-8)
    # step 1: m = 0.1 g, v = 0.01 g^2; m_hat = g, v_hat = g^2 -> p -= lr sign(g)
    assert np.allclose(step_with(opt, [2.0]), [0.9])
    # step 2 with g = 1: m = 0.9*0.2 + 0.1 = 0.28, v = 0.99*0.04 + 0.01 = 0.0496
    m_hat, v_hat = 0.28 / (1 - 0.81), 0.0496 / (1 - 0.9801)
    assert np.allclose(step_with(opt, [1.0]), [0.9 - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8)])

    m = Scalar([3.0])
    opt = Adam(m, lr=0.1, weight_decay=0.5)
    # g = 0 + 0.5 * 3 = 1.5 -> first Adam step moves by lr
    assert np.allclose(step_with(opt, [0.0]), [2.9])


def test_adamw_decouples_weight_decay():
    m = Scalar([3.0])
    opt = AdamW(m, lr=0.1, weight_decay=0.5)
    # decay first: 3 * (1 - 0.05) = 2.85; zero gradient -> Adam step of 0
    assert np.allclose(step_with(opt, [0.0]), [2.85])
    m2 = Scalar([3.0])
    opt2 = AdamW(m2, lr=0.1, weight_decay=0.5)
    assert np.allclose(step_with(opt2, [1.0]), [2.85 - 0.1])


def test_optimizer_state_dict_resume_is_identical():
    rng = np.random.default_rng(0)
    grads = rng.standard_normal((6, 3))
    for cls, kw in ((SGD, {"momentum": 0.9, "nesterov": True}), (Adam, {}), (AdamW, {})):
        a = Scalar(np.ones(3))
        opt_a = cls(a, lr=0.05, **kw)
        for g in grads[:3]:
            step_with(opt_a, g)
        b = Scalar(a.p.copy())
        opt_b = cls(b, lr=1.0)
        opt_b.load_state_dict(opt_a.state_dict())
        for g in grads[3:]:
            assert np.array_equal(step_with(opt_a, g), step_with(opt_b, g))
    with pytest.raises(InvalidConfig):
        SGD(Scalar([1.0]), lr=0.1).load_state_dict(Adam(Scalar([1.0])).state_dict())
    with pytest.raises(InvalidConfig):
        Adam(Scalar([1.0, 2.0])).load_state_dict(
            {**Adam(Scalar([1.0])).state_dict(), "state": {"p": {"m": np.zeros(1)}}})


def test_bad_hyper_parameters_and_nan_gradients():
    for bad in (lambda: SGD(Scalar([1.0]), lr=-1), lambda: Adam(Scalar([1.0]), betas=(1.0, 0.9)),
                lambda: SGD(Scalar([1.0]), lr=0.1, nesterov=True), lambda: SGD(object(), 0.1)):
        with pytest.raises(InvalidConfig):
            bad()
    opt = SGD(Scalar([1.0]), lr=0.1)
    with pytest.raises(InvalidConfig, match="NaN"):
        step_with(opt, [np.nan])
    assert opt.module.p[0] == 1.0


def test_schedulers_and_composition():
    opt = SGD(Scalar([1.0]), lr=1.0)
    s = StepLR(opt, step_size=2, gamma=0.5)
    assert [s.step() for _ in range(4)] == [1.0, 0.5, 0.5, 0.25]
    opt = SGD(Scalar([1.0]), lr=1.0)
    c = CosineLR(opt, T_max=4, eta_min=0.0)
    lrs = [c.step() for _ in range(5)]
    assert np.allclose(lrs, [(1 + np.cos(np.pi * t / 4)) / 2 for t in (1, 2, 3, 4)] + [0.0])
    opt = SGD(Scalar([1.0]), lr=1.0)
    w = LinearWarmup(opt, 4, then=CosineLR(opt, T_max=2))
    assert opt.lr == 0.25
    lrs = [w.step() for _ in range(6)]
    assert np.allclose(lrs, [0.5, 0.75, 1.0, 1.0, 0.5, 0.0])
    w2 = LinearWarmup(SGD(Scalar([1.0]), lr=1.0), 4, then=None)
    w2.load_state_dict(w.state_dict())
    assert w2.optimizer.lr == 1.0
    with pytest.raises(InvalidConfig):
        StepLR(opt, step_size=0)


def test_clip_grad_norm():
    m = Scalar([0.0, 0.0])
    m.grads["p"][...] = [3.0, 4.0]
    assert clip_grad_norm(m, 10.0) == pytest.approx(5.0)
    assert np.allclose(m.grads["p"], [3.0, 4.0])
    assert clip_grad_norm(m, 1.0) == pytest.approx(5.0)
    assert np.allclose(m.grads["p"], [0.6, 0.8])
