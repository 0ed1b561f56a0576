"""Dense attention benchmark: ruvector kernels vs a NumPy reference and PyTorch.

Shapes (issue 2): (a) 1 query x 1000 keys, d=128; (b) 32 x 1000, d=128; (c) self-attention
L=512, d=64, 8 heads, batch 1 and 8; (d) L=4096, d=64, 1 head; (e) a MultiHeadAttention
layer, d_model=512, 8 heads, L=512.  Forward FLOPs count 4 B H Lq Lk D (two products).
"""
import json
import platform

import numba
import numpy as np

from .. import MultiHeadAttention
from ..attention.functional import attention_backward, attention_forward, \
    scaled_dot_product_attention
from .._malloc import tune_malloc
from .timing import median_seconds, timing_entry
from .torch_baselines import measure_in_subprocess

MHA = (512, 8, 512)  # d_model, heads, L

SHAPES = {  # name: (B, H, Lq, Lk, D)
    "a_1x1000_d128": (1, 1, 1, 1000, 128),
    "b_32x1000_d128": (1, 1, 32, 1000, 128),
    "c_self512_h8_b1": (1, 8, 512, 512, 64),
    "c_self512_h8_b8": (8, 8, 512, 512, 64),
    "d_self4096_d64": (1, 1, 4096, 4096, 64),
}


def _numpy_attention(q, k, v):
    s = (q @ np.swapaxes(k, -1, -2)) * np.float32(1.0 / np.sqrt(q.shape[-1]))
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return s @ v


def bench_sdpa(shape, rng, budget):
    B, H, Lq, Lk, D = shape
    q = rng.standard_normal((B, H, Lq, D), dtype=np.float32)
    k = rng.standard_normal((B, H, Lk, D), dtype=np.float32)
    v = rng.standard_normal((B, H, Lk, D), dtype=np.float32)
    flops = 4.0 * B * H * Lq * Lk * D
    squeeze = (B, H, Lq) == (1, 1, 1)  # the single-query case goes through the (D,) form
    args = (q[0, 0, 0], k[0, 0], v[0, 0]) if squeeze else (q, k, v)
    fwd = median_seconds(lambda: scaled_dot_product_attention(*args), budget=budget)
    out, ctx, _ = attention_forward(q, k, v)
    grad = rng.standard_normal(out.shape, dtype=np.float32)
    bwd = median_seconds(lambda: attention_backward(ctx, grad), budget=budget)
    row = {"shape": {"B": B, "H": H, "Lq": Lq, "Lk": Lk, "D": D},
           "ruvector_forward": timing_entry(fwd, flops),
           "ruvector_backward": timing_entry(bwd, 2.5 * flops),
           "backward_over_forward": round(bwd / fwd, 2),
           "numpy_forward": timing_entry(median_seconds(lambda: _numpy_attention(q, k, v),
                                                        budget=budget), flops)}
    return row


def bench_mha(rng, budget, d_model=512, heads=8, L=512):
    x = rng.standard_normal((1, L, d_model), dtype=np.float32)
    mha = MultiHeadAttention(d_model, heads, seed=0)
    flops = 8.0 * L * d_model ** 2 + 4.0 * L * L * d_model
    fwd = median_seconds(lambda: mha.forward(x, x, x), budget=budget)
    out = mha.forward(x, x, x)
    grad = rng.standard_normal(out.shape, dtype=np.float32)
    bwd = median_seconds(lambda: mha.backward(grad), budget=budget)
    row = {"shape": {"B": 1, "L": L, "d_model": d_model, "heads": heads},
           "ruvector_forward": timing_entry(fwd, flops),
           "ruvector_backward": timing_entry(bwd, 2 * flops),
           "backward_over_forward": round(bwd / fwd, 2)}
    return row


def _add_torch(row, times, flops):
    fwd, bwd = times
    row["torch_forward"] = timing_entry(fwd, flops)
    row["torch_backward"] = timing_entry(bwd)
    row["forward_speedup_vs_torch"] = round(fwd / (row["ruvector_forward"]["ms"] / 1e3), 2)


def run(quick=False, seed=0):
    """Run every shape; returns one JSON-serialisable dict.

    PyTorch (when installed) is measured in a separate process with the same thread count.
    """
    rng = np.random.default_rng(seed)
    threads = numba.get_num_threads()
    malloc_tuned = tune_malloc()  # as for the PyG / PyTorch reference figures
    budget = 0.2 if quick else 1.0
    shapes = {k: v for k, v in SHAPES.items() if not quick or k[0] in "abc"}
    torch = measure_in_subprocess({"threads": threads, "budget": budget, "seed": seed,
                                   "sdpa": shapes, "mha": MHA})
    result = {"benchmark": "attention", "threads": threads,
              "machine": platform.processor() or platform.machine(),
              "numpy": np.__version__, "numba": numba.__version__,
              "torch": torch["version"] if torch else None, "quick": quick,
              "malloc_tuned": malloc_tuned, "results": {}}
    for name, (B, H, Lq, Lk, D) in shapes.items():
        row = bench_sdpa((B, H, Lq, Lk, D), rng, budget)
        if torch:
            _add_torch(row, torch["sdpa"][name], 4.0 * B * H * Lq * Lk * D)
        result["results"][name] = row
    d_model, heads, L = MHA
    row = bench_mha(rng, budget, d_model, heads, L)
    if torch:
        _add_torch(row, torch["mha"], 8.0 * L * d_model ** 2 + 4.0 * L * L * d_model)
    result["results"][f"e_mha_d{d_model}_h{heads}_L{L}"] = row
    return result


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller budget, skip (d) and c/b8")
    args = parser.parse_args(argv)
    print(json.dumps(run(quick=args.quick), indent=2))
