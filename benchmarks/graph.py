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
from .timing import command, median_seconds, timing_entry
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
    pyg = measure_in_subprocess({"threads": threads, "budget": budget, "seed": seed,
                                 "sizes": list(sizes), "layers": LAYERS},
                                module="benchmarks.pyg_baselines")
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
                theirs = pyg["results"][f"{n}/{name}"]
                row["pyg"] = theirs
                best = min(v["forward_ms"] for v in theirs.values())
                row["forward_speedup_vs_pyg_best"] = round(best / (fwd * 1e3), 2)
            result["results"][f"{n}/{name}"] = row
    return result


def report(result):
    """The result as a table."""
    print(f"graph layers, degree {result['degree']}, {result['features']} features, "
          f"{result['threads']} threads (PyG: {result['pyg']})")
    for name, row in result["results"].items():
        pyg = row.get("pyg", {})
        best = min((v["forward_ms"] for v in pyg.values()), default=float("nan"))
        print(f"  {name:22} fwd {row['forward']['ms']:8.3f} ms  bwd {row['backward']['ms']:8.3f} ms"
              f"  PyG best fwd {best:8.3f} ms")


def main(argv=None):
    return command(argv, __doc__, lambda a: run(), report)


if __name__ == "__main__":
    main()
