"""Thread control: BLAS must run single-threaded inside Numba ``prange`` workers."""
import contextlib
from concurrent.futures import ThreadPoolExecutor

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


_pool = None


def run_row_chunks(kernel, n_rows, *args, min_rows=64):
    """Run ``kernel(*args, start, stop)`` over contiguous row chunks on Python threads.

    For ``nogil`` Numba kernels whose callers alternate with other threaded libraries
    (hnswlib): plain threads that block when idle, unlike OpenMP workers, which spin after a
    parallel region and steal the cores from the next library call.
    """
    global _pool
    W = min(num_workers(), max(1, n_rows // min_rows))
    if W <= 1:
        kernel(*args, 0, n_rows)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(num_workers(), 2),
                                   thread_name_prefix="ruvector")
    bounds = [n_rows * i // W for i in range(W + 1)]
    futures = [_pool.submit(kernel, *args, bounds[i], bounds[i + 1]) for i in range(1, W)]
    kernel(*args, bounds[0], bounds[1])
    for f in futures:
        f.result()
