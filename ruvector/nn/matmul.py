"""Matrix products for layers: Numba-parallel for large operands, single-threaded BLAS
otherwise.

OpenBLAS's own worker threads spin for a while after every multi-threaded call; a Numba
parallel kernel that runs next then shares the cores with them and can take 50x longer
(measured: a 0.16 ms CSR aggregation took 8 ms right after a two-thread ``x @ W``).  So
every product here keeps OpenBLAS on one thread and all parallelism in Numba's pool.
"""
import numpy as np

from .._threads import blas_single_thread, num_workers

PARALLEL_MIN_FLOPS = 1 << 22
MIN_ROW_BLOCK = 64


def _big(m, k, n):
    return m * k * n >= PARALLEL_MIN_FLOPS and num_workers() > 1


def matmul(a, b):
    """a @ b for a (..., K) and b (K, N): rows split over the worker threads when large."""
    a2 = np.ascontiguousarray(a.reshape(-1, a.shape[-1]))
    b = np.asarray(b, dtype=a2.dtype)
    if not b.flags.f_contiguous:  # a transposed weight (F order) goes to BLAS as it is
        b = np.ascontiguousarray(b)
    if not _big(a2.shape[0], a2.shape[1], b.shape[1]):
        with blas_single_thread():
            return (a2 @ b).reshape(a.shape[:-1] + (b.shape[1],))
    from ..kernels.linear import matmul_rows
    out = np.empty((a2.shape[0], b.shape[1]), a2.dtype)
    # one row block per worker: each BLAS call packs all of b, so fewer, larger calls pay
    # for that less often (512^3 float32 on 2 threads: 2.0 ms against 2.2-2.4 with two
    # blocks per worker)
    block = max(MIN_ROW_BLOCK, -(-a2.shape[0] // num_workers()))
    with blas_single_thread():
        matmul_rows(a2, b, out, block)
    return out.reshape(a.shape[:-1] + (b.shape[1],))


def matmul_tn(a, c):
    """a^T c over all leading axes: a (..., K), c (..., N) -> (K, N) (a weight gradient)."""
    a2 = np.ascontiguousarray(a.reshape(-1, a.shape[-1]))
    c2 = np.ascontiguousarray(c.reshape(-1, c.shape[-1]), dtype=a2.dtype)
    if not _big(a2.shape[0], a2.shape[1], c2.shape[1]):
        with blas_single_thread():
            return a2.T @ c2
    from ..kernels.linear import matmul_tn as kernel
    partial = np.empty((num_workers(), a2.shape[1], c2.shape[1]), a2.dtype)
    with blas_single_thread():
        kernel(a2, c2, partial)
    return partial.sum(axis=0)
