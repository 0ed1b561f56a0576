"""The SIMD instruction set the kernels are built for, chosen once per process.

    avx512   512-bit vectors (16 float32 / 8 float64 lanes), when the host has AVX-512F
    avx2     256-bit vectors (8 / 4 lanes), AVX2 + FMA
    generic  128-bit vectors (4 / 2 lanes): SSE-only x86, NEON on ARM, anything else

``RUVECTOR_SIMD=avx512|avx2|generic`` overrides the host's choice (tests, comparisons).
Numba keys its disk cache by the host CPU, not by this choice, so an override that differs
from the host's own choice moves the cache of the process to a directory of its own
(``$NUMBA_CACHE_DIR/ruvector-simd-<isa>``, or under ``~/.cache/ruvector``): a build for one
width is never loaded for another.
"""
import os

from ..errors import InvalidConfig

VECTOR_BITS = {"avx512": 512, "avx2": 256, "generic": 128}
ENV = "RUVECTOR_SIMD"


def host_isa(features=None):
    """The widest of VECTOR_BITS that the host (or the given feature dict) supports."""
    if features is None:
        from llvmlite import binding
        features = binding.get_host_cpu_features()
    if features.get("avx512f"):
        return "avx512"
    if features.get("avx2") and features.get("fma"):
        return "avx2"
    return "generic"


def chosen_isa(host=None):
    """``RUVECTOR_SIMD`` when set (InvalidConfig for an unknown name), else the host's."""
    value = os.environ.get(ENV, "").strip().lower()
    if not value:
        return host or host_isa()
    if value not in VECTOR_BITS:
        raise InvalidConfig(f"{ENV}={value!r}: expected one of {', '.join(VECTOR_BITS)}")
    return value


def _separate_cache(isa):
    import numba
    base = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ruvector")
    numba.config.CACHE_DIR = os.path.join(base, f"ruvector-simd-{isa}")


_HOST = host_isa()
ISA = chosen_isa(_HOST)
if ISA != _HOST:
    _separate_cache(ISA)


def lanes(itemsize):
    """SIMD lanes of the chosen vector width for floats of ``itemsize`` bytes."""
    return VECTOR_BITS[ISA] // (8 * itemsize)
