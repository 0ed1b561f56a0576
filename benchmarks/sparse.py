"""Sparse and geometric attention benchmark.

1. L = 4,096 and 16,384, d = 64, one head: windowed (window 256) and strided (window 256,
   stride 256) attention, forward and backward, against dense attention on the same input
   (measured in alternation); GFLOP/s per useful pair = 4 pairs d / time (forward).
2. Top-k (k = 32) attention of one query over 100,000 keys, d = 64, against a NumPy
   pipeline (BLAS scores, argpartition, softmax, weighted sum).
3. Hyperbolic attention, 1 query x 1,000 keys, d = 64 (tangent and Einstein aggregation),
   against the same formulas evaluated with NumPy (the library's float64 formula path).
"""

import numba
import numpy as np

from ruvector.attention.functional import attention_backward, attention_forward
from ruvector.attention.geometric import HyperbolicAttention
from ruvector.attention.sparse import SparseAttention, StridedMask, WindowedMask
from .timing import command, interleaved_medians, median_seconds


def _dense(q, k, v):
    out, ctx, _ = attention_forward(q, k, v)
    return out, ctx


def bench_patterns(lengths=(4096, 16384), dim=64, window=256, stride=256, seed=0, budget=4.0):
    rng = np.random.default_rng(seed)
    results = {}
    for L in lengths:
        q, k, v = (rng.standard_normal((1, 1, L, dim), dtype=np.float32) for _ in range(3))
        g = rng.standard_normal((1, 1, L, dim), dtype=np.float32)
        dense_out, dense_ctx = _dense(q, k, v)
        row = {}
        for name, mask in (("windowed", WindowedMask(window)),
                           ("strided", StridedMask(window, stride))):
            sa = SparseAttention()
            sa.forward_sparse(q, k, v, mask)
            sa.backward(g)
            fwd, dense_fwd = interleaved_medians(
                [lambda: sa.forward_sparse(q, k, v, mask), lambda: _dense(q, k, v)],
                budget=budget, min_runs=3)
            bwd, dense_bwd = interleaved_medians(
                [lambda: sa.backward(g), lambda: attention_backward(dense_ctx, g)],
                budget=budget, min_runs=3)
            pairs = mask.nnz(L, L)
            row[name] = {
                "pairs": pairs, "forward_ms": round(1e3 * fwd, 3),
                "backward_ms": round(1e3 * bwd, 3),
                "dense_forward_ms": round(1e3 * dense_fwd, 3),
                "dense_backward_ms": round(1e3 * dense_bwd, 3),
                "forward_speedup": round(dense_fwd / fwd, 2),
                "backward_speedup": round(dense_bwd / bwd, 2),
                "gflops_per_useful_pair": round(4 * pairs * dim / fwd / 1e9, 1),
                "dense_gflops": round(4 * L * L * dim / dense_fwd / 1e9, 1)}
        results[f"L{L}"] = row
    return results


def bench_topk(n=100_000, dim=64, top_k=32, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((1, dim), dtype=np.float32)
    K = rng.standard_normal((n, dim), dtype=np.float32)
    V = rng.standard_normal((n, dim), dtype=np.float32)
    sa = SparseAttention()

    def numpy_pipeline():
        s = K @ q[0]
        top = np.argpartition(s, n - top_k)[n - top_k:]
        w = np.exp((s[top] - s[top].max()) / np.sqrt(dim))
        return (w / w.sum()) @ V[top]
    ours, ref = interleaved_medians([lambda: sa.forward_topk(q, K, V, top_k), numpy_pipeline],
                                    budget=2.0)
    same = np.allclose(sa.forward_topk(q, K, V, top_k)[0], numpy_pipeline(), atol=1e-5)
    return {"keys": n, "dim": dim, "k": top_k, "ms": round(1e3 * ours, 3),
            "numpy_ms": round(1e3 * ref, 3), "same_output": bool(same)}


def bench_hyperbolic(keys=1000, dim=64, seed=0):
    rng = np.random.default_rng(seed)
    q = (0.05 * rng.standard_normal(dim)).astype(np.float32)
    K = (0.05 * rng.standard_normal((keys, dim))).astype(np.float32)
    V = (0.05 * rng.standard_normal((keys, dim))).astype(np.float32)
    out = {}
    for agg in ("tangent", "einstein"):
        att = HyperbolicAttention(dim, aggregation=agg)
        att.forward(q, K, V)
        formula = lambda: att.reference(q, K, V)   # noqa: E731
        # measured apart: the 25x slower formula path would evict the kernel's data
        ours = median_seconds(lambda: att.forward(q, K, V), budget=1.0, max_runs=5000)
        ref = median_seconds(formula, budget=1.0)
        out[agg] = {"us": round(1e6 * ours, 1), "numpy_formula_us": round(1e6 * ref, 1)}
    out["frechet_us"] = round(1e6 * median_seconds(
        lambda: HyperbolicAttention(dim, aggregation="frechet").forward(q, K, V), budget=1.0), 1)
    return {"queries": 1, "keys": keys, "dim": dim, **out}


def run(lengths=(4096, 16384)):
    return {"threads": numba.get_num_threads(), "patterns": bench_patterns(lengths),
            "topk": bench_topk(), "hyperbolic": bench_hyperbolic()}


def report(result):
    """The result as a table."""
    for L, row in result["patterns"].items():
        for name, r in row.items():
            print(f"{L:7} {name:9} fwd {r['forward_ms']:9.2f} ms ({r['forward_speedup']}x dense, "
                  f"{r['gflops_per_useful_pair']} GFLOP/s per pair)  bwd {r['backward_ms']:9.2f} ms "
                  f"({r['backward_speedup']}x dense)")
    t, h = result["topk"], result["hyperbolic"]
    print(f"top-{t['k']} over {t['keys']:,} keys: {t['ms']} ms (NumPy pipeline {t['numpy_ms']} ms)")
    print(f"hyperbolic 1 x {h['keys']} x {h['dim']}: tangent {h['tangent']['us']} us, "
          f"einstein {h['einstein']['us']} us, frechet {h['frechet_us']} us")


def _options(parser):
    parser.add_argument("--quick", action="store_true", help="L = 1,024 only")


def main(argv=None):
    return command(argv, __doc__, lambda a: run(lengths=(1024,) if a.quick else (4096, 16384)), report, _options)


if __name__ == "__main__":
    main()
