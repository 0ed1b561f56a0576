"""CSR building: a stable counting sort of items by an integer key.

    indptr[i] = #{e : keys[e] < i},   perm lists the e with keys[e] == i (in order of e)
    at perm[indptr[i]:indptr[i+1]]

Used for graph CSR by target / source, the query engine's adjacency and sparse-attention
patterns (rows, and their transpose for the backward pass).
"""
import numpy as np
from numba import njit


@njit(cache=True)
def csr_order(keys, n):
    """(indptr (n+1,), perm (E,)): a stable counting sort of edge ids by ``keys`` in [0, n)."""
    indptr = np.zeros(n + 1, np.int64)
    for e in range(keys.shape[0]):
        indptr[keys[e] + 1] += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    perm = np.empty(keys.shape[0], np.int64)
    for e in range(keys.shape[0]):
        perm[fill[keys[e]]] = e
        fill[keys[e]] += 1
    return indptr, perm
