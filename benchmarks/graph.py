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
from .timing import baseline_disagreement, command, median_seconds, timing_entry
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


def run(sizes=SIZES, budget=1.0, seed=0):
    threads = numba.get_num_threads()
    malloc_tuned = tune_malloc()
    job = {"threads": threads, "budget": budget, "seed": seed, "sizes": list(sizes),
           "layers": LAYERS}
    pyg = measure_in_subprocess(job, module="benchmarks.pyg_baselines")
    result = {"benchmark": "graph", "threads": threads, "degree": DEGREE,
              "features": FEATURES, "malloc_tuned": malloc_tuned,
              "pyg": pyg["version"] if pyg else None, "results": {}}
    for n in sizes:
        ei, x = make_graph(n, seed=seed)
        graph = CSRGraph.from_edges(ei[0], ei[1], n)
        for name, (kind, kwargs) in LAYERS.items():
            layer = build_layer(kind, kwargs)
            fwd = median_seconds(lambda: layer.forward(x, graph), budget=budget)
            out = layer.forward(x, graph)
            grad = np.ones_like(out)
            bwd = median_seconds(lambda: layer.backward(grad), budget=budget)
            row = {"forward": timing_entry(fwd), "backward": timing_entry(bwd),
                   "backward_over_forward": round(bwd / fwd, 2)}
            if pyg:
                row["pyg"] = pyg["results"][f"{n}/{name}"]
            result["results"][f"{n}/{name}"] = row
    if pyg:
        from .pyg_baselines import measure    # it imports make_graph from here
        _compare(result["results"], measure({**job, "budget": budget / 2}))
    return result


def _best_forward(forms):
    return min(v["forward_ms"] for v in forms.values())


def _compare(rows, same_process):
    """Speed-ups against PyG's best input form, unless PyG's own-process figure and a
    measurement of it in this process disagree (then the row says so instead)."""
    for key, row in rows.items():
        best = _best_forward(row["pyg"])
        suspect = "baseline suspect: PyG does not run in this process" if same_process is None \
            else baseline_disagreement(best, _best_forward(same_process["results"][key]))
        if suspect:
            row["pyg_suspect"] = suspect
        else:
            row["forward_speedup_vs_pyg_best"] = round(best / row["forward"]["ms"], 2)


def report(result):
    """The result as a table."""
    print(f"graph layers, degree {result['degree']}, {result['features']} features, "
          f"{result['threads']} threads (PyG: {result['pyg']})")
    for name, row in result["results"].items():
        best = _best_forward(row["pyg"]) if "pyg" in row else float("nan")
        verdict = row.get("pyg_suspect") or \
            f"{row.get('forward_speedup_vs_pyg_best', float('nan')):.2f}x"
        print(f"  {name:22} fwd {row['forward']['ms']:8.3f} ms  bwd {row['backward']['ms']:8.3f} ms"
              f"  PyG best fwd {best:8.3f} ms  {verdict}")


def main(argv=None):
    return command(argv, __doc__, lambda a: run(), report)


if __name__ == "__main__":
    main()
