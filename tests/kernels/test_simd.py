"""The register-tiled micro-kernel (kernels/_simd.py) and the vectorised exp against NumPy."""
import numpy as np
from hypothesis import given, settings, strategies as st
from numba import njit, prange

from ruvector.kernels._math import fast_exp_f32
from ruvector.kernels._simd import (ACCUMULATE, COLUMN_MAX, EXP_NO_SUMS,
                                              EXP_SHIFTED, GRAD_SOFTMAX, claim_next, gemm_block, prefetch,
                                              prefetch_row)


@njit(cache=True)
def _gemm(C, A, B, m, n, k, transposed_a, mode, state):
    """C (m, n) (+)= A B with A stored (m, k), or (k, m) when ``transposed_a``; ``state``
    is the column state [colmax | shift | sums] (3 n)."""
    sa_r, sa_c = (1, m) if transposed_a else (k, 1)
    gemm_block(C, 0, n, A, 0, sa_r, sa_c, B, 0, n, m, n, k, mode, state, n)


@njit(cache=True)
def _gather_sum_prefetching(x, rows, ahead):
    """sum of x[rows[p]] over p, prefetching the row ``ahead`` slots on (and, as a hint may,
    an address far outside the array)."""
    out = np.zeros(x.shape[1:], x.dtype)
    for p in range(rows.shape[0]):
        prefetch_row(x, rows[min(p + ahead, rows.shape[0] - 1)])
        prefetch(x, (p + 1) * 1_000_000_007)
        out += x[rows[p]]
    return out


def test_prefetch_is_only_a_hint():
    """Prefetching (2-D and 3-D rows, wild addresses) compiles, never faults and changes no
    value."""
    rng = np.random.default_rng(0)
    for shape in ((50, 37), (50, 3, 20)):
        x = rng.standard_normal(shape).astype(np.float32)
        rows = rng.integers(0, 50, 200)
        np.testing.assert_allclose(_gather_sum_prefetching(x, rows, 4), x[rows].sum(axis=0),
                                   rtol=1e-5, atol=1e-5)


@njit(cache=True, parallel=True)
def _claim_all(counter, times_taken, workers):
    """Every worker takes tasks from the shared counter until none is left."""
    for _ in prange(workers):
        t = claim_next(counter)
        while t < times_taken.shape[0]:
            times_taken[t] += 1
            t = claim_next(counter)


def test_claim_next_hands_out_every_task_exactly_once():
    """Tasks taken through the atomic counter by 1 or 4 workers: each index exactly once,
    and each worker's final, failed claim moves the counter past the end once."""
    for n in (0, 1, 7, 50_000):
        for workers in (1, 4):
            counter, times_taken = np.zeros(1, np.int64), np.zeros(n, np.int64)
            _claim_all(counter, times_taken, workers)
            np.testing.assert_array_equal(times_taken, np.ones(n, np.int64))
            assert counter[0] == n + workers


@njit(cache=True)
def _exp_all(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = fast_exp_f32(x[i])
    return out


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 20), n=st.integers(1, 40), k=st.integers(1, 70),
       dtype=st.sampled_from([np.float32, np.float64]), transposed_a=st.booleans(),
       mode=st.sampled_from([0, ACCUMULATE, COLUMN_MAX, COLUMN_MAX | EXP_SHIFTED,
                             EXP_SHIFTED | EXP_NO_SUMS, GRAD_SOFTMAX]),
       seed=st.integers(0, 2**31))
def test_gemm_block_matches_numpy(m, n, k, dtype, transposed_a, mode, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    state0 = rng.standard_normal(3 * n).astype(dtype)
    c, state = c0.copy(), state0.copy()
    stored = np.ascontiguousarray(a.T if transposed_a else a)
    _gemm(c.reshape(-1), stored.reshape(-1), b.reshape(-1), m, n, k, transposed_a, mode, state)
    product = a.astype(np.float64) @ b.astype(np.float64)
    expect = product + c0 if mode & ACCUMULATE else product.copy()
    tol = 1e-4 if dtype == np.float32 else 1e-12
    colmax0, shift, sums0 = state0[:n], state0[n:2 * n], state0[2 * n:]
    if mode & GRAD_SOFTMAX:  # dS = P (dP - delta): the old C times (product - shift)
        expect = c0 * (product - shift)
    sums_kept = not mode & EXP_SHIFTED or mode & EXP_NO_SUMS
    if mode & EXP_SHIFTED:
        expect = np.exp(product - shift)
    if not sums_kept:
        np.testing.assert_allclose(state[2 * n:], sums0 + expect.sum(axis=0), rtol=tol,
                                   atol=tol * np.sqrt(k))
    np.testing.assert_allclose(c, expect, rtol=tol, atol=tol * np.sqrt(k))
    if mode & COLUMN_MAX:
        np.testing.assert_allclose(state[:n], np.maximum(colmax0, product.max(axis=0)),
                                   rtol=tol, atol=tol * np.sqrt(k))
    else:
        np.testing.assert_array_equal(state[:n], colmax0)
    np.testing.assert_array_equal(state[n:2 * n], shift)
    if sums_kept:
        np.testing.assert_array_equal(state[2 * n:], sums0)


def test_gemm_block_leaves_other_rows_and_columns_alone(rng):
    """Rows past m (the clamped tail of a 6-row micro-tile) and columns past n are not written."""
    a = rng.standard_normal((7, 5)).astype(np.float32)
    b = rng.standard_normal((5, 16)).astype(np.float32)
    big = np.full((9, 16), 7.0, np.float32)
    _gemm(big.reshape(-1), a.reshape(-1), b.reshape(-1), 7, 16, 5, False, 0, np.zeros(48, np.float32))
    np.testing.assert_allclose(big[:7], a @ b, rtol=1e-5, atol=1e-5)
    assert (big[7:] == 7.0).all()


def test_fast_exp_accuracy_and_limits():
    x = np.concatenate([np.linspace(-86.9, 88, 200001, dtype=np.float32),
                        np.array([0.0, -1e-8, 1e-8], np.float32)])
    got = _exp_all(x).astype(np.float64)
    ref = np.exp(x.astype(np.float64))
    assert np.max(np.abs(got - ref) / ref) < 5e-7
    tail = _exp_all(np.array([-np.inf, -1e30, -88.0, -87.0, -200.0], np.float32))
    assert (tail == 0).all()



def _epilogue_exp(x, shift=0.0):
    """exp(x_i - shift) through the micro-kernel's EXP_SHIFTED epilogue: a k = 1 product of
    the column x (m,) with a row of 16 ones (one vector micro-tile wide); returns the
    (m, 16) values and the 16 column sums."""
    m, n = x.shape[0], 16
    state = np.zeros(3 * n, np.float32)
    state[n:2 * n] = shift
    c = np.empty(m * n, np.float32)
    _gemm(c, x.astype(np.float32), np.ones(n, np.float32), m, n, 1, False, EXP_SHIFTED, state)
    return c.reshape(m, n), state[2 * n:]


def test_vector_exp_of_the_epilogue_accuracy_limits_and_poison():
    """The epilogue's exp (_simd._vector_exp): ~2.5e-7 relative on [-86.9, 88], arguments
    below -87 clamped to e^-87 (never a denormal, never above e^-87), and a NaN / Inf
    product poisons the column sums (NaN) even where its exp is finite."""
    x = np.linspace(-86.9, 88, 20001, dtype=np.float32)
    got, _ = _epilogue_exp(x)
    ref = np.exp(x.astype(np.float64))[:, None]
    assert np.max(np.abs(got - ref) / ref) < 5e-7
    tail, sums = _epilogue_exp(np.array([-1e30, -200.0, -88.0, -87.5], np.float32))
    low = np.float32(np.exp(-87.0))
    assert ((tail > 0) & (tail <= low * np.float32(1.0001))).all() and np.isfinite(sums).all()
    for bad in (np.nan, np.inf, -np.inf):
        x = np.zeros(7, np.float32)
        x[5] = bad
        _, sums = _epilogue_exp(x, shift=0.0)
        assert np.isnan(sums).all()
