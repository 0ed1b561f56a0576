"""Boundary checks: every public entry point converts and validates here, once.

Arrays are converted with ``np.ascontiguousarray(x, dtype)`` (float64 input becomes float32
unless a module computes in float64), then checked for rank, emptiness and finiteness with
one vectorised pass.  Kernels never re-validate.
"""
import numpy as np
from numba import njit

from . import _compile_notice  # noqa: F401  (announces first-use compilation)

from .errors import DimensionMismatch, InvalidConfig, InvalidInput


@njit(cache=True, fastmath={"reassoc", "nsz", "arcp", "contract"})
def _sum_squares(flat):
    """sum x^2 in float64: NaN/Inf when an entry is NaN/Inf (one vectorised pass)."""
    total = 0.0
    for i in range(flat.shape[0]):
        v = np.float64(flat[i])
        total += v * v
    return total


def as_array(x, name, *, dtype=np.float32, ndim=None, allow_empty=False, check=True):
    """Convert ``x`` to a C-contiguous array of ``dtype`` and check it.

    ``check=False`` skips the finiteness pass for callers whose kernel checks the values
    as it reads them (the dense attention forward).
    Raises InvalidInput for ragged or non-numeric data, empty arrays (unless allowed), NaN or
    Inf; DimensionMismatch when ``ndim`` (an int or a tuple of allowed ranks) does not match.
    """
    if isinstance(x, np.ndarray) and x.dtype.kind == "c":  # the cast would drop x.imag
        raise InvalidInput(f"{name} is complex ({x.dtype}); pass real values "
                           "(e.g. x.real, or np.concatenate([x.real, x.imag], -1))")
    try:
        arr = np.ascontiguousarray(x, dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{name} must be a numeric array (got {type(x).__name__}): {exc}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise DimensionMismatch(
                f"{name} must have rank {' or '.join(map(str, allowed))}, got shape {arr.shape}")
    if arr.size == 0:
        if not allow_empty:
            raise InvalidInput(f"{name} is empty (shape {arr.shape})")
        return arr
    if not check:
        return arr
    check_finite(arr, name)
    return arr


def all_finite(arr):
    """True when ``arr`` holds no NaN or Inf.

    One vectorised pass: a sum of squares is non-finite iff an entry is, or for finite
    float64 data whose squares overflow, which the exact test then clears.
    """
    if np.isfinite(_sum_squares(arr.reshape(-1))):
        return True
    return bool(np.isfinite(arr).all())


def check_finite(arr, name):
    """Raise InvalidInput if ``arr`` holds NaN or Inf (see :func:`all_finite`)."""
    if not all_finite(arr):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise InvalidInput(f"{name} contains {bad} NaN/Inf value(s) (shape {arr.shape})")


def check_overflow(result, what):
    """Raise InvalidInput when ``result``, computed from finite inputs, holds NaN/Inf: the
    inputs were so large that the arithmetic overflowed its dtype."""
    if not all_finite(result):
        raise InvalidInput(f"{what} overflows {result.dtype}: the inputs are too large "
                           "(scale them down, or use dtype=np.float64)")
    return result


def as_bool_mask(mask, name="mask"):
    """Convert a boolean mask (True = may attend); other dtypes are rejected, not guessed."""
    try:
        arr = np.asarray(mask)
    except (TypeError, ValueError):  # ragged rows
        raise InvalidInput(f"{name} must be a boolean array") from None
    if arr.dtype != np.bool_:
        raise InvalidInput(
            f"{name} must be boolean (True = may attend), got dtype {arr.dtype}; "
            "additive float masks are not accepted")
    return arr


def require_same(a_name, a_val, b_name, b_val, what, a_shape, b_shape):
    """Raise DimensionMismatch naming both arguments when ``a_val != b_val``."""
    if a_val != b_val:
        raise DimensionMismatch(
            f"{what} of {a_name} {a_shape} and {b_name} {b_shape} differ: {a_val} != {b_val}")


def integer(value, name, *, minimum=0, maximum=None, error=InvalidConfig):
    """``value`` as an int in [``minimum``, ``maximum``]; bools, floats and the rest raise
    ``error`` naming the argument, the value and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum \
            or (maximum is not None and value > maximum):
        if maximum is not None:
            wanted = f"an integer in [{minimum}, {maximum}]"
        else:
            wanted = {0: "a non-negative integer", 1: "a positive integer"}.get(
                minimum, f"an integer >= {minimum}")
        raise error(f"{name} must be {wanted}, got {value!r}")
    return int(value)


def index_array(values, name, *, size=None, pad=None, error=InvalidInput):
    """``values`` (any shape) as a 1-D int64 array of indices or ids in [0, ``size``)
    (or [0, 2**63 - 1] without a size); ``pad`` (e.g. -1) is let through as well.

    Only integer data is accepted: floats would be truncated, booleans read as 0 / 1, so
    both raise ``error`` naming the argument (an empty list is fine).
    """
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise error(f"{name} must be integers: {exc}") from None
    if arr.dtype.kind not in "iu" and not (arr.size == 0 and arr.dtype.kind in "fO"):
        raise error(f"{name} must be integers, got {arr.dtype} values "
                    f"{arr.reshape(-1)[:5].tolist() if arr.dtype.kind != 'V' else ''}")
    arr = arr.reshape(-1)
    high = np.iinfo(np.int64).max if size is None else size - 1
    bad = (arr < 0) | (arr > high)
    if pad is not None:
        bad &= arr != pad
    if bad.any():
        span = f"[0, {size})" if size is not None else "[0, 2**63 - 1]"
        raise error(f"{name} holds values outside {span}: {arr[bad][:5].tolist()}")
    return arr.astype(np.int64)


def flag(value, name, *, error=InvalidConfig):
    """``value`` as a bool: True / False (NumPy's too); 0, "yes", arrays and the rest raise."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise error(f"{name} must be True or False, got {value!r}")


def choice(value, name, options, *, error=InvalidConfig):
    """``value`` if it is one of ``options`` (strings), else ``error`` listing them; arrays
    and other unhashable values are refused, not compared element-wise."""
    if isinstance(value, str) and value in options:
        return value
    raise error(f"{name} must be one of {tuple(options)}, got {value!r}")


def positive_int(value, name):
    """Check a positive integer configuration value."""
    return integer(value, name, minimum=1)


def finite_number(value, name, *, nonzero=False, positive=False, error=InvalidConfig):
    """``value`` as a finite float (non-zero or positive if asked); strings, None, NaN and
    Inf raise ``error`` naming the argument."""
    number = None
    if not isinstance(value, (bool, str, bytes)):
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            pass
    if number is None or not np.isfinite(number) or (nonzero and number == 0) or \
            (positive and number <= 0):
        wanted = "a finite " + ("positive " if positive else "non-zero " if nonzero else "") \
            + "number"
        raise error(f"{name} must be {wanted}, got {value!r}")
    return number


def probability(value, name):
    """Check a probability in [0, 1)."""
    try:
        p = float(value)
    except (TypeError, ValueError):
        raise InvalidConfig(f"{name} must be a number in [0, 1), got {value!r}") from None
    if not 0.0 <= p < 1.0:
        raise InvalidConfig(f"{name} must be in [0, 1), got {value!r}")
    return p


def float_dtype(dtype):
    """The compute dtype of a module: float32 (default) or float64."""
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise InvalidConfig(f"dtype must be float32 or float64, got {dt}")
    return dt
