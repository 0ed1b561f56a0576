"""Scalar math helpers for Numba kernels (inlined into the callers' loops).

``fast_exp`` is a branch-free exponential that LLVM vectorises with AVX2: the llvmlite
wheels have no SVML, so ``np.exp`` inside a loop is a scalar libm call that dominates an
attention kernel.

    exp(x) = 2^k * e^r,  k = round(x / ln 2),  r = x - k ln 2  (Cody-Waite split of ln 2)

e^r on |r| <= ln(2)/2 is a degree-6 Taylor polynomial (truncation error < 1.3e-7), and 2^k
is built by writing the biased exponent ``(k + 127) << 23`` into an int32 that is read back
as float32.  Inputs below -87 (and -inf) give exactly 0; the result is accurate to about
2.5e-7 relative for -87 <= x <= 88.
"""
import numpy as np
from numba import njit, types
from numba.extending import overload

EXP_UNDERFLOW = np.float32(-87.0)

# LLVM fast-math flags that keep IEEE infinities and NaN: kernels rely on -inf for masked
# scores, so "nnan"/"ninf" (part of fastmath=True) must never be set.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(fastmath=FASTMATH, cache=True, inline="always")
def exp_row_f32(x, shift, out, ibuf):
    """out[j] = exp(x[j] - shift) for float32 rows; ``ibuf`` is int32 scratch of len(x).

    Returns the sum of the written values (accumulated in float32).
    """
    fbuf = ibuf.view(np.float32)
    total = np.float32(0.0)
    for j in range(x.shape[0]):
        xj = x[j] - shift
        xc = max(xj, EXP_UNDERFLOW)
        k = np.floor(xc * np.float32(1.4426950408889634) + np.float32(0.5))
        r = xc - k * np.float32(0.693359375)
        r = r + k * np.float32(2.12194440e-4)
        p = np.float32(1.0 / 720.0)
        p = p * r + np.float32(1.0 / 120.0)
        p = p * r + np.float32(1.0 / 24.0)
        p = p * r + np.float32(1.0 / 6.0)
        p = p * r + np.float32(0.5)
        p = p * r + np.float32(1.0)
        p = p * r + np.float32(1.0)
        ibuf[j] = (np.int32(k) + np.int32(127)) << 23
        e = p * fbuf[j] if xj > EXP_UNDERFLOW else np.float32(0.0)
        out[j] = e
        total += e
    return total


@njit(fastmath=FASTMATH, cache=True, inline="always")
def exp_row_f64(x, shift, out, ibuf):
    """float64 counterpart of :func:`exp_row_f32` using ``np.exp`` (exact to libm)."""
    total = 0.0
    for j in range(x.shape[0]):
        xj = x[j] - shift
        e = np.exp(xj) if xj > -745.0 else 0.0
        out[j] = e
        total += e
    return total


def exp_row(x, shift, out, ibuf):  # pragma: no cover - replaced by the overload in kernels
    """exp(x - shift) into ``out``; returns the sum. float32: :func:`exp_row_f32`, else libm."""
    raise NotImplementedError("exp_row is only callable from Numba kernels")


@overload(exp_row, inline="always")
def _exp_row_overload(x, shift, out, ibuf):
    if x.dtype == types.float32:
        return lambda x, shift, out, ibuf: exp_row_f32(x, shift, out, ibuf)
    return lambda x, shift, out, ibuf: exp_row_f64(x, shift, out, ibuf)
