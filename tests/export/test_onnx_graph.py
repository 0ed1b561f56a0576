"""ONNX export of the graph layers, the attention GNN block, GNN stacks and
AttentionDistance: onnxruntime reproduces forward to 1e-5 on graphs of other sizes than the
example (self-loops, parallel edges, nodes without incoming edges)."""
import numpy as np
import pytest

from ruvector import (AttentionDistance, AttentionGNNLayer, DimensionMismatch, GATLayer, GNN,
                      GINLayer, InvalidInput, SAGELayer)
from ruvector.nn.onnx_graph import run_onnx


def random_graph(rng, n, e, edge_dim=None):
    ei = rng.integers(0, n - 1, size=(2, e))   # node n-1 gets no edge
    ei[:, 0] = (2, 2)                            # a self-loop
    ei[:, 1] = ei[:, 2] = (0, 1)                 # a parallel edge
    x = rng.standard_normal((n, 0))
    attr = None if edge_dim is None else rng.standard_normal((e, edge_dim)).astype(np.float32)
    return x, ei, attr


def randomise(module, rng):
    """Non-zero biases (they start at zero) so that every parameter shows in the output."""
    for name, p in module.parameters().items():
        p[...] = rng.standard_normal(p.shape) * (0.3 if p.ndim else 0.1)


def check_graph_module(module, tmp_path, rng, in_dim, edge_dim=None, n=11, e=30):
    randomise(module, rng)
    path = module.to_onnx(tmp_path / "m.onnx")
    _, ei, attr = random_graph(rng, n, e, edge_dim)
    x = rng.standard_normal((n, in_dim)).astype(np.float32)
    feeds = {"x": x, "edge_index": ei.astype(np.int64)}
    args = (x, ei)
    if edge_dim is not None:
        feeds["edge_attr"] = attr
        args += (attr,)
    module.eval()
    expected = module.forward(*args)
    got = run_onnx(path, feeds)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs", [
    {}, {"concat": False}, {"add_self_loops": False}, {"edge_dim": 3},
    {"edge_dim": 3, "add_self_loops": False, "concat": False}, {"bias": False},
    {"negative_slope": 0.05}])
def test_gat_round_trip(tmp_path, rng, kwargs):
    layer = GATLayer(5, 4, heads=3, seed=0, **kwargs)
    check_graph_module(layer, tmp_path, rng, 5, kwargs.get("edge_dim"))


@pytest.mark.parametrize("train_eps", [False, True])
def test_gin_round_trip(tmp_path, rng, train_eps):
    check_graph_module(GINLayer(5, 9, 4, eps=0.2, train_eps=train_eps, seed=0), tmp_path, rng, 5)


@pytest.mark.parametrize("aggr", ["mean", "max", "sum"])
@pytest.mark.parametrize("normalize,root_weight,bias", [(False, True, True),
                                                        (True, False, False)])
def test_sage_round_trip(tmp_path, rng, aggr, normalize, root_weight, bias):
    layer = SAGELayer(5, 4, aggr=aggr, normalize=normalize, root_weight=root_weight, bias=bias,
                      seed=0)
    check_graph_module(layer, tmp_path, rng, 5)


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_attention_gnn_block_round_trip(tmp_path, rng, activation):
    block = AttentionGNNLayer(8, 2, ff_dim=12, activation=activation, seed=0)
    check_graph_module(block, tmp_path, rng, 8)


def test_gnn_stack_round_trip_and_parameter_names(tmp_path, rng):
    import onnx
    gnn = GNN([GATLayer(6, 4, 2, seed=0), SAGELayer(8, 8, aggr="max", seed=1),
               AttentionGNNLayer(8, 4, seed=2), GINLayer(8, 5, 3, seed=3)], activation="relu")
    check_graph_module(gnn, tmp_path, rng, 6)
    names = {i.name for i in onnx.load(tmp_path / "m.onnx").graph.initializer}
    assert set(gnn.parameters()) <= names


def test_float64_module_exports_as_float32(tmp_path, rng):
    check_graph_module(GINLayer(4, 6, 2, seed=0, dtype=np.float64), tmp_path, rng, 4)


@pytest.mark.parametrize("normalize,heads", [(True, 2), (False, 1)])
def test_attention_distance_round_trip(tmp_path, rng, normalize, heads):
    dist = AttentionDistance(6, 3, heads=heads, normalize=normalize, seed=1)
    path = dist.to_onnx(tmp_path / "d.onnx")
    a = rng.standard_normal((7, 6)).astype(np.float32)
    b = rng.standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(path, {"A": a, "B": b}), dist.pairwise(a, b),
                               rtol=1e-5, atol=1e-5)


def test_graph_export_checks_examples(tmp_path, rng):
    layer = GATLayer(4, 2, seed=0)
    x = rng.standard_normal((3, 4))
    with pytest.raises(InvalidInput):
        layer.to_onnx(tmp_path / "m.onnx", (x, np.array([[0, 5], [1, 2]])))
    with pytest.raises(DimensionMismatch):
        layer.to_onnx(tmp_path / "m.onnx", (x[:, :3], np.array([[0], [1]])))
    with pytest.raises(InvalidInput, match="edge_attr"):
        GATLayer(4, 2, edge_dim=2).to_onnx(tmp_path / "m.onnx", (x, np.array([[0], [1]])))
    with pytest.raises(DimensionMismatch):
        AttentionDistance(4).to_onnx(tmp_path / "m.onnx", (np.ones(4), np.ones((2, 4))))
    assert not (tmp_path / "m.onnx").exists()
