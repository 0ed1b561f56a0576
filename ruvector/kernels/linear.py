"""Row-parallel matrix products on Numba's thread pool (BLAS single-threaded per tile).

Running the products of a layer on the same worker threads as the attention kernels keeps
one thread pool busy: OpenBLAS's own threads spin after each call and would compete with
Numba's for the two cores.

    matmul_rows:   out[r0:r1] = a[r0:r1] @ b           (disjoint row blocks per worker)
    matmul_tn:     partial[w] = a[rows_w]^T @ c[rows_w] (summed by the caller: a^T c)
"""
import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def matmul_rows(a, b, out, block):
    """out = a @ b with a (M, K), b (K, N), out (M, N), row blocks of ``block`` rows."""
    M = a.shape[0]
    nblocks = (M + block - 1) // block
    for t in prange(nblocks):
        r0 = t * block
        r1 = min(r0 + block, M)
        np.dot(a[r0:r1], b, out[r0:r1])


@njit(cache=True, parallel=True)
def matmul_tn(a, c, partial):
    """partial[w] = a[rows_w]^T @ c[rows_w] for W = len(partial) contiguous row ranges."""
    M = a.shape[0]
    W = partial.shape[0]
    per = (M + W - 1) // W
    for w in prange(W):
        r0 = min(w * per, M)
        r1 = min(r0 + per, M)
        if r1 > r0:
            np.dot(a[r0:r1].T, c[r0:r1], partial[w])
        else:
            partial[w][:, :] = 0
