import os
import subprocess
import sys
import textwrap


def _run(code, env=None):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, check=True, env={**os.environ, **(env or {})}).stdout


def test_import_is_fast_and_compiles_nothing():
    out = _run("""
        import sys, time
        t = time.perf_counter()
        import ruvector
        print(time.perf_counter() - t)
        print('numba' in sys.modules)
    """)
    seconds, numba_loaded = out.split()
    assert float(seconds) < 0.5
    assert numba_loaded == "False"


def test_kernels_are_cached_on_disk_for_a_second_process(tmp_path):
    code = """
        import numpy as np
        from ruvector.attention import scaled_dot_product_attention as sdpa
        from ruvector.kernels import dense
        sdpa(np.ones((3, 4)), np.ones((5, 4)), np.ones((5, 4)))
        print(sum(dense.forward_serial.stats.cache_hits.values()),
              sum(dense.forward_serial.stats.cache_misses.values()))
    """
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    _run(code, env)
    hits, misses = map(int, _run(code, env).split())
    assert hits >= 1 and misses == 0


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "ruvector", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().endswith("0.1.0")


def test_tune_malloc_applies_on_glibc():
    out = _run("""
        import platform, ruvector
        print(ruvector.tune_malloc(), platform.libc_ver()[0])
    """)
    applied, libc = out.split()
    assert applied == "True" or libc != "glibc"


def test_every_mechanism_and_layer_is_a_module_importable_from_its_package():
    import ruvector
    from ruvector import attention, gnn, nn
    from ruvector.attention import Manifold, SparseMask
    classes = [getattr(pkg, name) for pkg in (attention, gnn, nn) for name in pkg.__all__]
    mechanisms = [c for c in classes if isinstance(c, type)
                  and not issubclass(c, (Manifold, SparseMask, nn.CSRGraph))]
    assert len(mechanisms) == 15
    assert [c.__name__ for c in mechanisms if not issubclass(c, nn.Module)] == []
    for name in ("SparseAttention", "HyperbolicAttention", "SphericalAttention",
                 "MixedCurvatureAttention", "GATLayer", "GNN", "CSRGraph"):
        assert getattr(ruvector, name) in classes
