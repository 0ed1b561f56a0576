import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true",
                     help="run the fuzz suites (tests/fuzz) with ten times as many cases")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def reference_attention(q, k, v, mask=None, causal=False, scale=None):
    """Slow float64 NumPy reference: softmax(scale Q K^T, masked) V and the weights."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = scale * (q @ np.swapaxes(k, -1, -2))
    allow = np.ones(s.shape, dtype=bool)
    if mask is not None:
        allow &= np.broadcast_to(mask, s.shape)
    if causal:
        Lq, Lk = s.shape[-2:]
        allow &= np.arange(Lk)[None, :] <= np.arange(Lq)[:, None]
    s = np.where(allow, s, -np.inf)
    top = s.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    p = np.where(allow, np.exp(s - top), 0.0)
    z = p.sum(axis=-1, keepdims=True)
    p = np.where(z > 0, p / np.where(z > 0, z, 1.0), 0.0)
    return p @ v, p


def dense_reference_grads(q, k, v, mask, g, causal=False):
    """Gradients (dQ, dK, dV) of sum(out * g) for dense masked attention, by the closed form
    in float64: dV = P^T g, dS = P (g V^T - rowsum(g V^T P)), dQ = scale dS K,
    dK = scale dS^T Q."""
    q, k, v, g = (np.asarray(a, dtype=np.float64) for a in (q, k, v, g))
    out, p = reference_attention(q, k, v, mask=mask, causal=causal)
    scale = 1 / np.sqrt(q.shape[-1])
    dv = np.swapaxes(p, -1, -2) @ g
    dp = g @ np.swapaxes(v, -1, -2)
    ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
    return scale * ds @ k, scale * np.swapaxes(ds, -1, -2) @ q, dv


def fd_entry(f, x, i, eps=1e-6):
    """Central difference of scalar f with respect to flat entry i of x (restored after)."""
    flat = x.reshape(-1)
    old = flat[i]
    flat[i] = old + eps
    up = f()
    flat[i] = old - eps
    down = f()
    flat[i] = old
    return (up - down) / (2 * eps)


def finite_difference(f, x, eps=1e-6):
    """Central differences of scalar f at every entry of the float64 array x."""
    return np.array([fd_entry(f, x, i, eps) for i in range(x.size)]).reshape(x.shape)


def rel_error(a, b):
    """max |a - b| relative to max |b| (floored at 1e-4: an exactly-zero gradient, such as
    that of a key bias under softmax, is compared absolutely)."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-4))
