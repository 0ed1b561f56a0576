"""Every Numba kernel of the package (free ``@njit`` functions over contiguous arrays); the
mechanisms, layers and stores above convert and validate, then call in here."""
from .. import _compile_notice  # noqa: F401  (announces first-use compilation)
from .._threads import single_level_openmp

single_level_openmp()
