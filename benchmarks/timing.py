"""Timing helpers shared by the benchmark suites."""
import os
import platform
import time
from importlib import metadata

import numpy as np


def median_seconds(fn, *, budget=0.6, min_runs=5, max_runs=500, warmup=2):
    """Median wall time of ``fn()`` over repeated runs after ``warmup`` calls.

    The number of runs fits a time ``budget`` (seconds), within [min_runs, max_runs].
    """
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    first = max(time.perf_counter() - t0, 1e-7)
    runs = int(min(max(budget / first, min_runs), max_runs))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def interleaved_medians(fns, *, budget=1.0, min_runs=5, max_runs=20_000, shuffle=False):
    """Median wall time of each function, measured in alternation (A B C A B C ...).

    Alternating makes ratios robust to drifts in machine load, which sequential runs of
    each function would fold into the comparison.  The rounds fill the time ``budget``
    (within [min_runs, max_runs]): a cap of a few hundred rounds would squeeze the runs of
    a 30 us call into 20 ms, where one busy stretch of the machine decides the median.
    ``shuffle``: each round in a new (seeded) order, for three or more functions of which
    one disturbs whichever runs next (its thread pool, its cache footprint).
    """
    for fn in fns:
        fn()
    t0 = time.perf_counter()
    for fn in fns:
        fn()
    rounds = int(min(max(budget / max(time.perf_counter() - t0, 1e-7), min_runs), max_runs))
    times = [[] for _ in fns]
    order, rng = list(range(len(fns))), np.random.default_rng(0)
    for _ in range(rounds):
        if shuffle:
            rng.shuffle(order)
        for i in order:
            t0 = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - t0)
    return [float(np.median(ts)) for ts in times]


# what holds PyTorch (ATen, oneDNN, MKL) and OpenBLAS to a narrower instruction set
BASELINE_ISA_ENV = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2", "OPENBLAS_CORETYPE": "Haswell"},
    "generic": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41",
                "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "OPENBLAS_CORETYPE": "Nehalem"},
}


def baseline_isa_env():
    """Environment variables that hold the baselines to the width ruvector's kernels were
    built for, when ``RUVECTOR_SIMD`` chose a narrower one than the host's ({} otherwise):
    an AVX2 build compared with an AVX-512 PyTorch would not stand in for an AVX2 machine.
    """
    from ruvector.kernels import _isa
    if _isa.ISA == _isa.host_isa():
        return {}
    return BASELINE_ISA_ENV.get(_isa.ISA, {})


def optional_torch(threads):
    """The torch module limited to ``threads`` threads (and to the kernels' instruction set,
    see :func:`baseline_isa_env`), or None when not installed."""
    for name, value in baseline_isa_env().items():
        os.environ.setdefault(name, value)
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def cell(value, spec, absent="–"):
    """``format(value, spec)`` for a report table, or ``absent`` padded to the spec's width
    when the figure does not exist (a baseline not installed, a row it has no form of)."""
    width = int("".join(ch for ch in spec.split(".")[0] if ch.isdigit()) or 0)
    return absent.rjust(width) if value is None else format(value, spec)


def timing_entry(seconds, flops=None):
    """{"ms": ..., "gflops": ...} for one measurement."""
    entry = {"ms": round(seconds * 1e3, 4)}
    if flops:
        entry["gflops"] = round(flops / seconds / 1e9, 2)
    return entry


SUSPECT_RATIO = 3.0


def baseline_disagreement(subprocess_ms, same_process_ms, ratio=SUSPECT_RATIO):
    """None when a baseline's figure from its own process and a same-process measurement
    of it agree within ``ratio``; else a message (a starved or spinning process, not a
    speed-up, would be behind the difference)."""
    slow, fast = max(subprocess_ms, same_process_ms), min(subprocess_ms, same_process_ms)
    if fast > 0 and slow / fast <= ratio:
        return None
    return (f"baseline suspect: {subprocess_ms:.3f} ms in its own process, "
            f"{same_process_ms:.3f} ms in this one")


PARENT_SPIN_LIMIT = 0.05


def quiesce(limit=1.0, window=0.02):
    """Sleep until this process's idle thread pools stop spinning (less than a tenth of a
    core used over ``window`` seconds; OpenBLAS spins ~0.1 s after a call), at most
    ``limit`` seconds: a baseline started now gets the cores to itself."""
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        cpu = time.process_time()
        time.sleep(window)
        if time.process_time() - cpu < 0.1 * window:
            return True
    return False


def parent_spin(cpu_share, limit=PARENT_SPIN_LIMIT):
    """None when this process stayed idle (below ``limit`` of a core) while a baseline ran
    in its own process; else a message: the baseline's figures are then not its own."""
    if cpu_share <= limit:
        return None
    return (f"baseline suspect: this process used {100 * cpu_share:.0f}% of a core "
            f"while the baseline ran")


def speedup_or_suspect(ours_ms, baseline_ms, same_process_ms, parent_cpu_share):
    """(baseline / ours, None), or (None, why the baseline's figure is not trusted): this
    process was busy while the baseline ran in its own, the baseline could not be measured
    in this process (``same_process_ms`` None), or the two figures of it disagree."""
    suspect = parent_spin(parent_cpu_share) or (
        "baseline suspect: it does not run in this process" if same_process_ms is None
        else baseline_disagreement(baseline_ms, same_process_ms))
    return (None, suspect) if suspect else (round(baseline_ms / ours_ms, 2), None)


def cpu_model():
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """What a figure was measured on: CPU model, the kernels' instruction set, threads and
    the versions of the libraries compared."""
    import numba
    from ruvector.kernels import _isa
    versions = {}
    for name in ("ruvector", "numpy", "numba", "hnswlib", "torch", "torch_geometric", "faiss-cpu"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu_model(), "arch": platform.machine(), "isa": _isa.ISA,
            "host_isa": _isa.host_isa(), "baseline_env": baseline_isa_env(),
            "threads": numba.get_num_threads(), "versions": versions}


def command(argv, description, run, report, configure=None):
    """The one command line of a benchmark script: its own options (``configure(parser)``),
    ``--json`` for the raw result, else the ``report(result)`` table."""
    import argparse
    import json
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the raw JSON result")
    if configure is not None:
        configure(parser)
    args = parser.parse_args(argv)
    result = run(args)
    m = result["machine"] = machine()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{m['cpu']} ({m['arch']}), kernels built for {m['isa']}, {m['threads']} threads")
        report(result)
    return result
