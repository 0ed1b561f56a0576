"""The instruction set the kernels are built for: host detection, the RUVECTOR_SIMD override,
a cache of its own for an override, and the kernels checked against NumPy on another width."""
import os
import subprocess
import sys
import textwrap

import pytest

from ruvector.errors import InvalidConfig
from ruvector.kernels import _isa


@pytest.mark.parametrize("features, isa", [
    ({"avx512f": True, "avx2": True, "fma": True}, "avx512"),
    ({"avx2": True, "fma": True}, "avx2"),
    ({"avx2": True}, "generic"),            # AVX2 without FMA: no fused multiply-add
    ({"sse4.2": True}, "generic"),
    ({"neon": True}, "generic"),
    ({}, "generic"),
])
def test_host_isa_from_cpu_features(features, isa):
    assert _isa.host_isa(features) == isa


def test_override_and_its_errors(monkeypatch):
    monkeypatch.setenv(_isa.ENV, " AVX2 ")
    assert _isa.chosen_isa() == "avx2"
    monkeypatch.setenv(_isa.ENV, "")
    assert _isa.chosen_isa() == _isa.host_isa()
    monkeypatch.setenv(_isa.ENV, "avx1024")
    with pytest.raises(InvalidConfig, match="avx512, avx2, generic"):
        _isa.chosen_isa()


def test_lanes_follow_the_chosen_width():
    bits = _isa.VECTOR_BITS[_isa.ISA]
    assert (_isa.lanes(4), _isa.lanes(8)) == (bits // 32, bits // 64)


CHECK_KERNELS = """
    import numba, numpy as np
    from ruvector.kernels import _isa
    from ruvector.kernels._simd import ACCUMULATE, COLUMN_MAX, gemm_block, simd_lanes
    from ruvector.attention import functional as F
    from ruvector import GINLayer
    from numba import njit

    print(_isa.ISA, _isa.lanes(4), numba.config.CACHE_DIR)

    @njit
    def gemm(c, a, b, m, n, k, mode, cs):
        gemm_block(c, 0, n, a, 0, k, 1, b, 0, n, m, n, k, mode, cs, n)
        return simd_lanes(c)

    rng = np.random.default_rng(0)
    for dtype, tol in ((np.float32, 1e-4), (np.float64, 1e-12)):
        for m, n, k in ((7, 1, 3), (6, 8, 5), (13, 37, 9), (5, 64, 4), (1, 50, 17)):
            a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
            c0 = rng.standard_normal((m, n)).astype(dtype)
            ab = a.astype(np.float64) @ b
            c, cs = c0.copy().ravel(), np.full(3 * n, -np.inf, dtype)
            nr = gemm(c, a.ravel(), b.ravel(), m, n, k, ACCUMULATE, cs)
            assert nr == 2 * _isa.lanes(np.dtype(dtype).itemsize), nr
            assert np.allclose(c.reshape(m, n), c0 + ab, atol=tol, rtol=tol)
            gemm(c, a.ravel(), b.ravel(), m, n, k, COLUMN_MAX, cs)
            assert np.allclose(c.reshape(m, n), ab, atol=tol, rtol=tol)
            assert np.allclose(cs[:n], ab.max(axis=0), atol=tol, rtol=tol)

    for Lq, Lk, causal in ((3, 40, False), (70, 300, True), (300, 150, False)):
        q, k = rng.standard_normal((1, 2, Lq, 24)), rng.standard_normal((1, 2, Lk, 24))
        v = rng.standard_normal((1, 2, Lk, 40))
        out, ctx, _ = F.attention_forward(q, k, v, causal=causal)
        s = q @ np.swapaxes(k, -1, -2) / np.sqrt(24)
        if causal:
            s = np.where(np.tri(Lq, Lk, dtype=bool), s, -np.inf)
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        assert np.allclose(out, p @ v, atol=1e-10), (Lq, Lk)
        g = rng.standard_normal(out.shape)
        dq, dk, dv = F.attention_backward(ctx, g)
        dp = g @ np.swapaxes(v, -1, -2)
        ds = p * (dp - (dp * p).sum(-1, keepdims=True)) / np.sqrt(24)
        for got, ref in ((dq, ds @ k), (dk, np.swapaxes(ds, -1, -2) @ q),
                         (dv, np.swapaxes(p, -1, -2) @ g)):
            assert np.allclose(got, ref, atol=1e-9), (Lq, Lk)

    x = rng.standard_normal((300, 40)).astype(np.float32)
    ei = rng.integers(0, 300, (2, 2000))
    gin = GINLayer(40, 48, 36, eps=0.25, seed=0)
    agg = (1.25 * x.astype(np.float64))
    np.add.at(agg, ei[1], x[ei[0]])
    h = np.maximum(agg @ gin.w1 + gin.b1, 0) @ gin.w2 + gin.b2
    assert np.allclose(gin.forward(x, ei), h, atol=1e-3, rtol=1e-3)
    print("ok")
"""


def test_kernels_on_the_generic_width_match_numpy(tmp_path):
    """The 128-bit build (as on ARM / SSE-only CPUs): micro-kernel with remainders, dense
    attention forward / backward (narrow, causal and wide tiles) and a fused GIN layer."""
    env = {**os.environ, _isa.ENV: "generic", "NUMBA_CACHE_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(CHECK_KERNELS)], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    isa, lanes, cache_dir, ok = run.stdout.split()
    assert (isa, lanes, ok) == ("generic", "4", "ok")
    separate = _isa.host_isa() != "generic"
    assert cache_dir == (str(tmp_path / "ruvector-simd-generic") if separate else str(tmp_path))
