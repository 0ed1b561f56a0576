"""Numba's OpenMP pool leaves the process's OpenMP runtimes at one active level, so a
library that shares ``libgomp`` (PyTorch imported later) does not nest its thread teams."""
import os
import subprocess
import sys
import textwrap

import numba
import pytest

import ruvector.kernels  # noqa: F401  (starts Numba's pool)
from ruvector import _threads

omp_only = pytest.mark.skipif(numba.threading_layer() != "omp",
                              reason="the OpenMP layer is not Numba's layer on this host")


def _levels_in_subprocess(code="", **env):
    """max-active-levels of each OpenMP runtime in a fresh process after ruvector's kernels
    were imported (and ``code`` ran)."""
    script = textwrap.dedent("""
        import ruvector.kernels  # noqa: F401
        from ruvector import _threads
        %s
        print(*[rt.omp_get_max_active_levels() for rt in _threads._openmp_runtimes().values()])
    """) % code
    clean = {k: v for k, v in os.environ.items() if k != "OMP_MAX_ACTIVE_LEVELS"}
    out = subprocess.run([sys.executable, "-c", script], env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout
    return [int(x) for x in out.split()]


@omp_only
def test_numba_pool_leaves_one_active_level():
    assert _levels_in_subprocess() == [1]
    assert _threads.single_level_openmp() == 0  # idempotent: nothing left to reset


@omp_only
def test_the_users_nesting_choice_is_kept():
    assert _levels_in_subprocess(OMP_MAX_ACTIVE_LEVELS="4") == [4]
    assert _levels_in_subprocess(OMP_MAX_ACTIVE_LEVELS="many") == [1]


def test_nested_parallel_kernels_still_compute():
    @numba.njit(parallel=True)
    def row_sums(x):
        out = x[:, 0].copy()
        for i in numba.prange(x.shape[0]):
            out[i] = inner(x[i])
        return out

    @numba.njit(parallel=True)
    def inner(row):
        s = 0.0
        for j in numba.prange(row.size):
            s += row[j]
        return s

    import numpy as np
    x = np.arange(60.0).reshape(6, 10)
    np.testing.assert_allclose(row_sums(x), x.sum(axis=1))
