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
from numba.extending import intrinsic, overload

EXP_UNDERFLOW = np.float32(-87.0)

# LLVM fast-math flags that keep IEEE infinities and NaN: kernels rely on -inf for masked
# scores, so "nnan"/"ninf" (part of fastmath=True) must never be set.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@intrinsic
def bits_as_float(typingctx, bits):
    """Reinterpret an int32 as float32 or an int64 as float64 (no conversion, no memory)."""
    if bits == types.int32:
        out = types.float32
    elif bits == types.int64:
        out = types.float64
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(out))

    return out(bits), codegen


@njit(fastmath=FASTMATH, cache=True, inline="always")
def fast_exp_f32(x):
    """exp(x) for float32 (see module docstring); a pure expression, so loops vectorise."""
    xc = max(x, EXP_UNDERFLOW)
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
    two_k = bits_as_float(np.int32((np.int32(k) + np.int32(127)) << 23))
    return p * two_k if x > EXP_UNDERFLOW else np.float32(0.0)


def fexp(x):  # pragma: no cover - replaced by the overload in kernels
    """exp for kernels: :func:`fast_exp_f32` for float32, libm ``np.exp`` for float64."""
    raise NotImplementedError("fexp is only callable from Numba kernels")


@overload(fexp)
def _fexp_overload(x):
    if x == types.float32:
        return lambda x: fast_exp_f32(x)
    return lambda x: np.exp(x)


@njit(fastmath=FASTMATH, cache=True, inline="always")
def dot(a, b):
    """a . b of two 1-D arrays, accumulated in a's dtype (float32 stays SIMD-wide)."""
    acc = a.dtype.type(0)
    for d in range(a.shape[0]):
        acc += a[d] * b[d]
    return acc


@njit(fastmath=FASTMATH, cache=True, inline="always")
def exp_row(x, shift, out):
    """out[j] = exp(x[j] - shift) (``out`` may be ``x``); returns the sum of the values."""
    total = x.dtype.type(0)
    for j in range(x.shape[0]):
        e = fexp(x[j] - shift)
        out[j] = e
        total += e
    return total


LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
SQRT2 = 1.4142135623730951


@njit(fastmath=FASTMATH, cache=True, inline="always")
def log_into_f64(x, out, ibuf):
    """out[j] = log(x[j]) for positive normal float64 x (contiguous), vectorisable with AVX2.

    x = m 2^e with m in [sqrt(2)/2, sqrt(2)); log m = 2 artanh(s) = 2 (s + s^3/3 + ... +
    s^17/17), s = (m - 1)/(m + 1), |s| <= 0.1716 (truncation < 1e-16 relative);
    log x = e ln 2 + log m.  No libm call and no float64 <-> int64 conversion (AVX2 has
    none): the exponent becomes a float by writing it into the mantissa of 2^52 and
    subtracting.  Each loop reads and writes one view of a buffer, so LLVM vectorises it.
    ``ibuf``: int64 scratch of len(x).
    """
    xi = x.view(np.int64)
    oi = out.view(np.int64)
    fbuf = ibuf.view(np.float64)
    for j in range(x.shape[0]):
        bits = xi[j]
        ibuf[j] = ((bits >> 52) & 0x7FF) | 0x4330000000000000
        oi[j] = (bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000
    for j in range(x.shape[0]):
        ef = fbuf[j] - 4503599627371519.0          # 2^52 + 1023: the unbiased exponent
        m = out[j]
        big = m > SQRT2
        m = m * 0.5 if big else m
        ef = ef + 1.0 if big else ef
        s = (m - 1.0) / (m + 1.0)
        s2 = s * s
        p = 1.0 / 17.0
        p = p * s2 + 1.0 / 15.0
        p = p * s2 + 1.0 / 13.0
        p = p * s2 + 1.0 / 11.0
        p = p * s2 + 1.0 / 9.0
        p = p * s2 + 1.0 / 7.0
        p = p * s2 + 1.0 / 5.0
        p = p * s2 + 1.0 / 3.0
        p = p * s2 + 1.0
        out[j] = ef * LN2_HI + (2.0 * s * p + ef * LN2_LO)


@njit(fastmath=FASTMATH, cache=True, inline="always")
def exp_into_f64(x, shift, out, ibuf):
    """out[j] = exp(x[j] - shift), vectorisable float64 (Cody-Waite split of ln 2, degree-13
    Taylor polynomial on |r| <= ln(2)/2, relative error ~2e-16); arguments below -708 give
    0.  2^k is built without int conversions: the bits of k + 2^52 + 1023 shifted left by
    52.  Returns the sum.  ``ibuf``: int64 scratch of len(x)."""
    fbuf = ibuf.view(np.float64)
    for j in range(x.shape[0]):
        xj = x[j] - shift
        xc = max(xj, -708.0)
        k = np.floor(xc * 1.4426950408889634 + 0.5)
        r = (xc - k * LN2_HI) - k * LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        out[j] = p if xj > -708.0 else 0.0
        fbuf[j] = k + 4503599627371519.0
    for j in range(x.shape[0]):
        ibuf[j] = ibuf[j] << 52
    total = 0.0
    for j in range(x.shape[0]):
        e = out[j] * fbuf[j]
        out[j] = e
        total += e
    return total
