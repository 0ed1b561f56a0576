"""Dense attention benchmark: ruvector kernels vs a NumPy reference and PyTorch.

Shapes (issue 2): (a) 1 query x 1000 keys, d=128; (b) 32 x 1000, d=128; (c) self-attention
L=512, d=64, 8 heads, batch 1 and 8; (d) L=4096, d=64, 1 head; (e) a MultiHeadAttention
layer, d_model=512, 8 heads, L=512.  Forward FLOPs count 4 B H Lq Lk D (two products).
"""
import numba
import numpy as np

from ruvector import MultiHeadAttention
from ruvector.attention.functional import attention_backward, attention_forward, \
    scaled_dot_product_attention
from ruvector import tune_malloc
from .timing import cell, command, interleaved_medians, optional_torch, speedup_or_suspect, \
    timing_entry
from .torch_baselines import measure_in_subprocess

MHA = (512, 8, 512)  # d_model, heads, L

SHAPES = {  # name: (B, H, Lq, Lk, D)
    "a_1x1000_d128": (1, 1, 1, 1000, 128),
    "b_32x1000_d128": (1, 1, 32, 1000, 128),
    "c_self512_h8_b1": (1, 8, 512, 512, 64),
    "c_self512_h8_b8": (8, 8, 512, 512, 64),
    "d_self4096_d64": (1, 1, 4096, 4096, 64),
}


def bench_sdpa(shape, rng, budget):
    """(forward, backward) seconds for one shape, measured in alternation (the ratio of the
    two is then not skewed by a change in the machine's load between them)."""
    B, H, Lq, Lk, D = shape
    q = rng.standard_normal((B, H, Lq, D), dtype=np.float32)
    k = rng.standard_normal((B, H, Lk, D), dtype=np.float32)
    v = rng.standard_normal((B, H, Lk, D), dtype=np.float32)
    squeeze = (B, H, Lq) == (1, 1, 1)  # the single-query case goes through the (D,) form
    args = (q[0, 0, 0], k[0, 0], v[0, 0]) if squeeze else (q, k, v)
    out, ctx, _ = attention_forward(q, k, v)
    grad = rng.standard_normal(out.shape, dtype=np.float32)
    return interleaved_medians([lambda: scaled_dot_product_attention(*args),
                                lambda: attention_backward(ctx, grad)], budget=2 * budget)


def bench_mha(rng, budget, d_model=512, heads=8, L=512):
    """(forward, backward) seconds of a self-attention MultiHeadAttention layer, measured
    in alternation."""
    x = rng.standard_normal((1, L, d_model), dtype=np.float32)
    mha = MultiHeadAttention(d_model, heads, seed=0)
    out = mha.forward(x, x, x)
    grad = rng.standard_normal(out.shape, dtype=np.float32)
    return interleaved_medians([lambda: mha.forward(x, x, x), lambda: mha.backward(grad)],
                               budget=2 * budget)


def _row(ours, numpy_ref, theirs, flops, shape, backward_flops):
    """One result row from per-round seconds: the medians over the rounds."""
    med = np.median(np.array(ours), axis=0)
    row = {"shape": shape, "ruvector_forward": timing_entry(med[0], flops),
           "ruvector_backward": timing_entry(med[1], backward_flops),
           "backward_over_forward": round(float(med[1] / med[0]), 2)}
    if numpy_ref:
        row["numpy_forward"] = timing_entry(float(np.median(numpy_ref)), flops)
    if theirs:
        fwd, bwd = np.median(np.array(theirs), axis=0)
        row["torch_forward"] = timing_entry(fwd, flops)
        row["torch_backward"] = timing_entry(bwd)
    return row


def _same_process_torch(threads, shapes, mha_name, budget, seed):
    """PyTorch's forward milliseconds measured in this process (the cross-check of its
    own-process figures), by row name."""
    from .torch_baselines import mha_times, sdpa_times
    torch = optional_torch(threads)
    same = {name: sdpa_times(torch, shape, budget, seed)[0] for name, shape in shapes.items()}
    same[mha_name] = mha_times(torch, *MHA, budget, seed)[0]
    return {name: seconds * 1e3 for name, seconds in same.items()}


def _compare(rows, same_process_ms, parent_share):
    """Speed-ups against PyTorch, or why its figure is not trusted."""
    for name, row in rows.items():
        speedup, suspect = speedup_or_suspect(row["ruvector_forward"]["ms"],
                                              row["torch_forward"]["ms"],
                                              same_process_ms[name], parent_share)
        if suspect:
            row["torch_suspect"] = suspect
        else:
            row["forward_speedup_vs_torch"] = speedup


def run(quick=False, seed=0, rounds=None):
    """Run every shape; returns one JSON-serialisable dict.

    The NumPy reference and PyTorch (when installed) are measured in a separate process with
    the same thread count (their thread pools would slow Numba's down in this one).  The
    machine's load drifts, so the suite runs in ``rounds`` (3; 1 with ``quick``) that
    alternate the baselines' process and ruvector's, each with a share of the time budget,
    and every figure is the median over the rounds: both sides see the same stretches.
    PyTorch is then measured once more in this process: a row whose two PyTorch figures
    disagree, or a round in which this process did not sleep while PyTorch ran, says
    ``baseline suspect`` instead of printing a speed-up.
    """
    rng = np.random.default_rng(seed)
    threads = numba.get_num_threads()
    malloc_tuned = tune_malloc()  # as for the PyG / PyTorch reference figures
    rounds = rounds or (1 if quick else 3)
    budget = (0.2 if quick else 1.0) / rounds
    shapes = {k: v for k, v in SHAPES.items() if not quick or k[0] in "abc"}
    d_model, heads, L = MHA
    mha_name = f"e_mha_d{d_model}_h{heads}_L{L}"
    ours = {name: [] for name in [*shapes, mha_name]}
    theirs = {name: [] for name in ours}
    numpy_ref = {name: [] for name in ours}
    version, parent_share = None, 0.0
    for _ in range(rounds):
        base = measure_in_subprocess({"threads": threads, "budget": budget, "seed": seed,
                                      "sdpa": shapes, "mha": MHA})
        if base:
            parent_share = max(parent_share, base["parent_cpu_share"])
        for name in shapes if base else ():
            numpy_ref[name].append(base["numpy"][name])
        if base and base["version"]:
            version = base["version"]
            for name in shapes:
                theirs[name].append(base["sdpa"][name])
            theirs[mha_name].append(base["mha"])
        for name, shape in shapes.items():
            ours[name].append(bench_sdpa(shape, rng, budget))
        ours[mha_name].append(bench_mha(rng, budget, d_model, heads, L))
    result = {"benchmark": "attention", "threads": threads, "torch": version,
              "quick": quick, "rounds": rounds, "malloc_tuned": malloc_tuned, "results": {}}
    for name, (B, H, Lq, Lk, D) in shapes.items():
        flops = 4.0 * B * H * Lq * Lk * D
        result["results"][name] = _row(ours[name], numpy_ref[name], theirs[name], flops,
                                       {"B": B, "H": H, "Lq": Lq, "Lk": Lk, "D": D},
                                       2.5 * flops)
    flops = 8.0 * L * d_model ** 2 + 4.0 * L * L * d_model
    result["results"][mha_name] = _row(
        ours[mha_name], None, theirs[mha_name], flops,
        {"B": 1, "L": L, "d_model": d_model, "heads": heads}, 2 * flops)
    if version:
        result["parent_cpu_share"] = parent_share
        same = _same_process_torch(threads, shapes, mha_name, budget / 2, seed)
        _compare(result["results"], same, parent_share)
    return result


def report(result):
    """The result as a table."""
    print(f"dense attention, {result['threads']} threads (torch: {result['torch']})")
    print(f"{'shape':22} {'fwd ms':>9} {'GFLOP/s':>8} {'bwd ms':>9} {'bwd/fwd':>8} "
          f"{'numpy ms':>9} {'torch ms':>9} {'vs torch':>8}")
    absent = "–" if result["torch"] else "not installed"
    for name, row in result["results"].items():
        f, b = row["ruvector_forward"], row["ruvector_backward"]
        numpy_ms = row.get("numpy_forward", {}).get("ms")
        torch_ms = row.get("torch_forward", {}).get("ms")
        speedup = row.get("forward_speedup_vs_torch")
        verdict = row.get("torch_suspect") or \
            (cell(speedup, "7.2f") + "x" if speedup is not None else cell(None, "8", absent))
        print(f"{name:22} {f['ms']:9.3f} {f['gflops']:8.1f} {b['ms']:9.3f} "
              f"{row['backward_over_forward']:8.2f} {cell(numpy_ms, '9.3f')} "
              f"{cell(torch_ms, '9.3f', absent)} {verdict}")


def _options(parser):
    parser.add_argument("--quick", action="store_true", help="smaller budget, skip (d) and c/b8")


def main(argv=None):
    return command(argv, __doc__, lambda a: run(quick=a.quick), report, _options)


if __name__ == "__main__":
    main()
