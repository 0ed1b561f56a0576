"""Baselines, run in their own process (``python -m benchmarks.torch_baselines``).

PyTorch and Numba each keep an OpenMP thread pool whose idle threads spin, and so does
OpenBLAS behind the NumPy reference: measured in one process, each slows the others down.
Reads a JSON job from stdin, prints JSON timings: the NumPy reference always, PyTorch
(``version`` not null) when it is installed.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

from ruvector import tune_malloc
from .timing import baseline_isa_env, interleaved_medians, median_seconds, optional_torch, \
    quiesce


def numpy_attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v with NumPy (BLAS products, max-subtracted softmax)."""
    s = (q @ np.swapaxes(k, -1, -2)) * np.float32(1.0 / np.sqrt(q.shape[-1]))
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return s @ v


def numpy_time(shape, budget, seed):
    B, H, Lq, Lk, D = shape
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((B, H, L, D), dtype=np.float32) for L in (Lq, Lk, Lk))
    return median_seconds(lambda: numpy_attention(q, k, v), budget=budget)


def sdpa_times(torch, shape, budget, seed):
    B, H, Lq, Lk, D = shape
    rng = np.random.default_rng(seed)
    q, k, v = (torch.from_numpy(rng.standard_normal((B, H, L, D), dtype=np.float32))
               for L in (Lq, Lk, Lk))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    qg, kg, vg = (t.clone().requires_grad_(True) for t in (q, k, v))
    out = sdpa(qg, kg, vg)
    grad = torch.randn_like(out)
    return _alternating(torch, lambda: sdpa(q, k, v),
                        lambda: torch.autograd.grad(out, (qg, kg, vg), grad, retain_graph=True),
                        budget)


def _alternating(torch, forward, backward, budget):
    """(forward, backward) median seconds measured in alternation, the forward without
    autograd, as ruvector's are (``bench_sdpa`` / ``bench_mha``)."""
    def forward_no_grad():
        with torch.no_grad():
            forward()
    return interleaved_medians([forward_no_grad, backward], budget=2 * budget)


def mha_times(torch, d_model, heads, L, budget, seed):
    torch.manual_seed(seed)
    m = torch.nn.MultiheadAttention(d_model, heads, batch_first=True)
    x = torch.randn(1, L, d_model)
    xg = x.clone().requires_grad_(True)
    out = m(xg, xg, xg, need_weights=False)[0]
    grad = torch.randn_like(out)
    return _alternating(torch, lambda: m(x, x, x, need_weights=False),
                        lambda: torch.autograd.grad(out, [xg, *m.parameters()], grad,
                                                    retain_graph=True), budget)


def measure_in_subprocess(job, module=__name__):
    """Run ``python -m module`` in a fresh interpreter with ``job`` (JSON) on stdin; its JSON
    answer, or None when PyTorch is not installed there or it fails.

    The child starts once this process's thread pools have gone to sleep (:func:`quiesce`),
    and the answer records under ``parent_cpu_share`` how much of a core this process used
    while the child ran (waiting on it should cost nothing; see ``timing.parent_spin``)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the checkout
    quiesce()
    cpu, wall = time.process_time(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", module], input=json.dumps(job),
                          capture_output=True, text=True, cwd=root,
                          env={**os.environ, **baseline_isa_env()})
    share = (time.process_time() - cpu) / max(time.perf_counter() - wall, 1e-9)
    if proc.returncode != 0:
        return None
    answer = json.loads(proc.stdout)
    if answer is not None:
        answer["parent_cpu_share"] = round(share, 4)
    return answer


def _main():
    job = json.load(sys.stdin)
    tune_malloc()  # the same allocator settings as the ruvector side
    from threadpoolctl import threadpool_limits
    with threadpool_limits(job["threads"]):
        out = {"numpy": {name: numpy_time(shape, job["budget"], job["seed"])
                         for name, shape in job["sdpa"].items()}}
    torch = optional_torch(job["threads"])
    out.update(version=None, sdpa={}, mha=None)
    if torch is not None:
        out["version"] = torch.__version__
        for name, shape in job["sdpa"].items():
            out["sdpa"][name] = sdpa_times(torch, shape, job["budget"], job["seed"])
        if job.get("mha"):
            out["mha"] = mha_times(torch, *job["mha"], job["budget"], job["seed"])
    print(json.dumps(out))


if __name__ == "__main__":
    _main()
