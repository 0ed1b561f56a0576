"""Thread control: BLAS must run single-threaded inside Numba ``prange`` workers, and
Numba's OpenMP pool must not change how other OpenMP users of the process behave."""
import contextlib
import ctypes
import os
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


def _openmp_runtimes():
    """{path: ctypes handle} of every OpenMP runtime loaded in this process."""
    from threadpoolctl import ThreadpoolController
    handles = {}
    for lib in ThreadpoolController().lib_controllers:
        if lib.user_api == "openmp":
            try:
                handles[lib.filepath] = ctypes.CDLL(lib.filepath)
            except OSError:
                continue
    return handles


def single_level_openmp():
    """Start Numba's thread pool, then put OpenMP nesting back to what the process asked.

    Numba's ``omp`` layer sets the runtime's max-active-levels to 255 when it starts; a
    library that later binds to the same ``libgomp.so.1`` (PyTorch imported after
    ruvector) then nests its thread teams and oversubscribes the cores (measured: SDPA
    15x slower).  Nested Numba regions run serially either way.  Only the runtimes that the
    pool's start loaded or raised are reset, to ``OMP_MAX_ACTIVE_LEVELS`` when set, else 1.
    Returns the number of runtimes reset.
    """
    before = {path: rt.omp_get_max_active_levels() for path, rt in _openmp_runtimes().items()}
    numba.get_num_threads()  # launches the pool (and picks the threading layer)
    if numba.threading_layer() != "omp":
        return 0
    try:
        levels = max(1, int(os.environ.get("OMP_MAX_ACTIVE_LEVELS", "1")))
    except ValueError:
        levels = 1
    reset = 0
    for path, runtime in _openmp_runtimes().items():
        now = runtime.omp_get_max_active_levels()
        if now > levels and now > before.get(path, 0):
            runtime.omp_set_max_active_levels(levels)
            reset += 1
    return reset


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
