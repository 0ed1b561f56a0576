"""Graph layer benchmark: GAT / GIN / SAGE forward and backward vs PyTorch Geometric.

Random graphs with 1,000 and 10,000 nodes, average in-degree 16, 64 features (seeded).
PyG (when installed) runs in its own process with the same thread count, with both of its
input forms: ``edge_index`` and a sparse CSR adjacency (``torch.sparse_csr``) where the layer
supports it.
"""

import numba
import numpy as np

from ruvector import tune_malloc
from ruvector.gnn import GATLayer, GINLayer, SAGELayer
from ruvector.nn.csr import CSRGraph
from .timing import cell, command, interleaved_medians, speedup_or_suspect, timing_entry
from .torch_baselines import measure_in_subprocess

SIZES = (1_000, 10_000)
DEGREE = 16
FEATURES = 64
LAYERS = {  # name: (kind, kwargs)
    "gat_4x16": ("gat", {"out_dim": 16, "heads": 4}),
    "gat_4x64": ("gat", {"out_dim": 64, "heads": 4}),
    "gin_64_64_64": ("gin", {"hidden_dim": 64, "out_dim": 64}),
    "sage_mean_64": ("sage", {"out_dim": 64}),
}


def make_graph(n, degree=DEGREE, features=FEATURES, seed=0):
    rng = np.random.default_rng(seed)
    e = n * degree
    ei = np.stack([rng.integers(0, n, e), rng.integers(0, n, e)]).astype(np.int64)
    return ei, rng.standard_normal((n, features), dtype=np.float32)


def build_layer(kind, kwargs, features=FEATURES):
    if kind == "gat":
        return GATLayer(features, kwargs["out_dim"], heads=kwargs["heads"], seed=0)
    if kind == "gin":
        return GINLayer(features, kwargs["hidden_dim"], kwargs["out_dim"], seed=0)
    return SAGELayer(features, kwargs["out_dim"], seed=0)


def run(sizes=SIZES, budget=1.0, seed=0, rounds=3):
    """Every layer on every size; returns one JSON-serialisable dict.

    PyG runs in its own process (its thread pool and Numba's would slow each other down
    in one); the machine's load drifts, so the suite runs ``rounds`` that alternate PyG's
    process and ruvector's, each with a share of the time budget, and every figure is the
    median over the rounds.  PyG is then measured once more in this process: a row whose
    two PyG figures disagree, or a round in which this process did not sleep while PyG ran,
    says ``baseline suspect`` instead of printing a speed-up.
    """
    threads = numba.get_num_threads()
    malloc_tuned = tune_malloc()
    share = budget / rounds
    job = {"threads": threads, "budget": share, "seed": seed, "sizes": list(sizes),
           "layers": LAYERS}
    cases = {}
    for n in sizes:
        ei, x = make_graph(n, seed=seed)
        graph = CSRGraph.from_edges(ei[0], ei[1], n)
        for name, (kind, kwargs) in LAYERS.items():
            cases[f"{n}/{name}"] = (build_layer(kind, kwargs), x, graph)
    ours = {key: [] for key in cases}
    theirs = {key: [] for key in cases}
    version, parent_share = None, 0.0
    for _ in range(rounds):
        pyg = measure_in_subprocess(job, module="benchmarks.pyg_baselines")
        if pyg:
            version = pyg["version"]
            parent_share = max(parent_share, pyg["parent_cpu_share"])
            for key in cases:
                theirs[key].append(pyg["results"][key])
        for key, (layer, x, graph) in cases.items():
            ours[key].append(_forward_backward(layer, x, graph, share))
    result = {"benchmark": "graph", "threads": threads, "degree": DEGREE,
              "features": FEATURES, "malloc_tuned": malloc_tuned, "rounds": rounds,
              "pyg": version, "results": {}}
    for key in cases:
        fwd, bwd = np.median(np.array(ours[key]), axis=0)
        row = {"forward": timing_entry(fwd), "backward": timing_entry(bwd),
               "backward_over_forward": round(float(bwd / fwd), 2)}
        if theirs[key]:
            row["pyg"] = _median_forms(theirs[key])
        result["results"][key] = row
    if version:
        from .pyg_baselines import measure    # it imports make_graph from here
        result["parent_cpu_share"] = parent_share
        _compare(result["results"], measure({**job, "budget": share / 2}), parent_share)
    return result


def _forward_backward(layer, x, graph, budget):
    """(forward, backward) median seconds of one layer: the forward in a loop of its own,
    as PyG's is measured (warm caches on both sides), the backward alternating with the
    forward whose saved state it needs."""
    forward = lambda: layer.forward(x, graph)  # noqa: E731
    fwd = interleaved_medians([forward], budget=budget)[0]
    grad = np.ones_like(forward())
    bwd = interleaved_medians([forward, lambda: layer.backward(grad)], budget=budget)[1]
    return fwd, bwd


def _median_forms(rounds):
    """PyG's per-form figures, each the median over the rounds."""
    return {form: {field: round(float(np.median([r[form][field] for r in rounds])), 4)
                   for field in rounds[0][form]} for form in rounds[0]}


def _best_forward(forms):
    return min(v["forward_ms"] for v in forms.values())


def _compare(rows, same_process, parent_share=0.0):
    """Speed-ups against PyG's best input form, or why PyG's figure is not trusted
    (``timing.speedup_or_suspect``)."""
    for key, row in rows.items():
        same = None if same_process is None else _best_forward(same_process["results"][key])
        speedup, suspect = speedup_or_suspect(row["forward"]["ms"], _best_forward(row["pyg"]),
                                              same, parent_share)
        if suspect:
            row["pyg_suspect"] = suspect
        else:
            row["forward_speedup_vs_pyg_best"] = speedup


def report(result):
    """The result as a table."""
    print(f"graph layers, degree {result['degree']}, {result['features']} features, "
          f"{result['threads']} threads (PyG: {result['pyg']})")
    for name, row in result["results"].items():
        best = _best_forward(row["pyg"]) if "pyg" in row else None
        speedup = row.get("forward_speedup_vs_pyg_best")
        verdict = row.get("pyg_suspect") or (f"{speedup:.2f}x" if speedup is not None else "")
        pyg = f"{cell(best, '8.3f')} ms" if result["pyg"] else "not installed"
        print(f"  {name:22} fwd {row['forward']['ms']:8.3f} ms  bwd {row['backward']['ms']:8.3f} ms"
              f"  PyG best fwd {pyg}  {verdict}")


def main(argv=None):
    return command(argv, __doc__, lambda a: run(), report)


if __name__ == "__main__":
    main()
