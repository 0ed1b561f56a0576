"""Thread control: BLAS must run single-threaded inside Numba ``prange`` workers."""
import contextlib

import numba

_controllers = None


def _blas_libs():
    global _controllers
    if _controllers is None:
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS that Numba's np.dot calls)
        from threadpoolctl import ThreadpoolController
        _controllers = [c for c in ThreadpoolController().lib_controllers
                        if c.user_api == "blas"]
    return _controllers


@contextlib.contextmanager
def blas_single_thread():
    """Limit every loaded BLAS to one thread for the duration of a parallel kernel."""
    libs = _blas_libs()
    before = [lib.get_num_threads() for lib in libs]
    for lib, n in zip(libs, before):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libs, before):
            if n != 1:
                lib.set_num_threads(n)


def num_workers():
    """Number of Numba worker threads in use (``numba.set_num_threads`` is respected)."""
    return numba.get_num_threads()
