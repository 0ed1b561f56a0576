"""PyTorch Geometric baselines for the graph benchmark, run in their own process."""
import json
import sys
import warnings

from ruvector import tune_malloc
from .graph import make_graph
from .timing import median_seconds, optional_torch


def _layer(torch, kind, kwargs, features):
    from torch_geometric.nn import GATConv, GINConv, SAGEConv
    if kind == "gat":
        return GATConv(features, kwargs["out_dim"], heads=kwargs["heads"])
    if kind == "gin":
        mlp = torch.nn.Sequential(torch.nn.Linear(features, kwargs["hidden_dim"]),
                                  torch.nn.ReLU(),
                                  torch.nn.Linear(kwargs["hidden_dim"], kwargs["out_dim"]))
        return GINConv(mlp)
    return SAGEConv(features, kwargs["out_dim"])


def measure(job):
    """PyG's forward / backward times for ``job`` (sizes, layers, threads, budget, seed), or
    None when PyTorch or PyG is not installed."""
    torch = optional_torch(job["threads"])
    try:
        import torch_geometric
    except ImportError:
        torch_geometric = None
    if torch is None or torch_geometric is None:
        return None
    out = {"version": torch_geometric.__version__, "results": {}}
    for n in job["sizes"]:
        ei, x = make_graph(n, seed=job["seed"])
        tx = torch.from_numpy(x)
        tei = torch.from_numpy(ei)
        adj = torch.sparse_coo_tensor(tei.flip(0), torch.ones(ei.shape[1]), (n, n)).coalesce()
        with warnings.catch_warnings():   # torch: "Sparse CSR tensor support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            adj_csr = adj.to_sparse_csr()
        for name, (kind, kwargs) in job["layers"].items():
            layer = _layer(torch, kind, kwargs, x.shape[1])
            forms = {"edge_index": tei}
            if kind != "gat":  # GATConv needs edge_index for its per-edge softmax
                forms["csr"] = adj_csr
            res = {}
            for form, graph in forms.items():
                with torch.no_grad():
                    fwd = median_seconds(lambda: layer(tx, graph), budget=job["budget"])
                xg = tx.clone().requires_grad_(True)
                y = layer(xg, graph)
                grad = torch.ones_like(y)
                bwd = median_seconds(lambda: torch.autograd.grad(
                    y, [xg, *layer.parameters()], grad, retain_graph=True), budget=job["budget"])
                res[form] = {"forward_ms": round(fwd * 1e3, 4), "backward_ms": round(bwd * 1e3, 4)}
            out["results"][f"{n}/{name}"] = res
    return out


def _main():
    job = json.load(sys.stdin)
    tune_malloc()
    print(json.dumps(measure(job)))


if __name__ == "__main__":
    _main()
