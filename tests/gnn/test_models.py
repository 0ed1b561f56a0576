import numpy as np
import pytest

from ruvector import InvalidConfig, InvalidInput, SAGELayer
from ruvector.gnn import GATLayer
from ruvector.gnn import GNN, AttentionalPooling, AttentionGNNLayer, subgraph_embedding
from tests.conftest import finite_difference, rel_error
from tests.gnn.test_layers import random_graph


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_attention_gnn_layer_backward(rng, activation):
    N = 6
    ei = random_graph(rng, N, 14)
    layer = AttentionGNNLayer(4, heads=2, ff_dim=5, activation=activation, seed=1,
                              dtype=np.float64)
    x = rng.standard_normal((N, 4))
    w = rng.standard_normal((N, 4))

    def loss():
        return float((layer.forward(x, ei) * w).sum())

    loss()
    layer.zero_grad()
    gx = layer.backward(w)
    assert rel_error(gx, finite_difference(loss, x)) < 1e-4
    params = layer.parameters()
    assert {"attn.weight", "norm1.weight", "ff1.weight", "ff2.bias", "norm2.bias"} <= set(params)
    for name, p in params.items():
        assert rel_error(layer.grads[name], finite_difference(loss, p)) < 1e-4, name


def test_attention_gnn_layer_forward_formula(rng):
    N = 5
    ei = random_graph(rng, N, 10)
    layer = AttentionGNNLayer(4, heads=2, activation="relu", seed=2, dtype=np.float64)
    x = rng.standard_normal((N, 4))

    def ln(v):
        return (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-5)

    attn = GATLayer(4, 2, 2, seed=0, dtype=np.float64)
    attn.load_state_dict({k[5:]: v for k, v in layer.state_dict().items() if k.startswith("attn.")})
    h = ln(x + attn.forward(x, ei))
    ff = np.maximum(h @ layer.ff1.weight + layer.ff1.bias, 0) @ layer.ff2.weight + layer.ff2.bias
    np.testing.assert_allclose(layer.forward(x, ei), ln(h + ff), rtol=1e-10, atol=1e-12)


def test_gnn_stack_backward_and_state_dict(rng):
    N = 7
    ei = random_graph(rng, N, 16)
    net = GNN([GATLayer(3, 2, heads=2, seed=0, dtype=np.float64),
               SAGELayer(4, 2, seed=1, dtype=np.float64)], activation="relu")
    x = rng.standard_normal((N, 3))
    w = rng.standard_normal((N, 2))

    def loss():
        return float((net.forward(x, ei) * w).sum())

    loss()
    gx = net.backward(w)
    assert rel_error(gx, finite_difference(loss, x)) < 1e-5
    for name, p in net.parameters().items():
        assert rel_error(net.grads[name], finite_difference(loss, p)) < 1e-5, name
    other = GNN([GATLayer(3, 2, heads=2, seed=5, dtype=np.float64),
                 SAGELayer(4, 2, seed=6, dtype=np.float64)], activation="relu")
    other.load_state_dict(net.state_dict())
    np.testing.assert_array_equal(other.forward(x, ei), net.forward(x, ei))
    with pytest.raises(InvalidConfig):
        GNN([])


def test_subgraph_embedding_laws(rng):
    feats = rng.standard_normal((20, 6)).astype(np.float32)
    nodes = [3, 7, 11, 12]
    emb, w = subgraph_embedding(feats, nodes, method="mean")
    np.testing.assert_allclose(emb, feats[nodes].mean(0), rtol=1e-6)
    emb, w = subgraph_embedding(feats, nodes)
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(emb, w @ feats[nodes], rtol=1e-5)
    q = feats[3] * 10
    _, wq = subgraph_embedding(feats, nodes, query=q)
    assert np.argmax(wq) == 0  # a query equal to a member (scaled up) attends to it most
    emb, w = subgraph_embedding(feats, nodes, method="gated")
    np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-6)
    with pytest.raises(InvalidInput):
        subgraph_embedding(feats, [])
    with pytest.raises(InvalidInput):
        subgraph_embedding(feats, [25])
    with pytest.raises(InvalidConfig):
        subgraph_embedding(feats, nodes, method="max")


def test_attentional_pooling_backward(rng):
    pool = AttentionalPooling(4, seed=0, dtype=np.float64)
    x = rng.standard_normal((6, 4))
    w = rng.standard_normal(4)

    def loss():
        return float(pool.forward(x)[0] @ w)

    loss()
    gx = pool.backward(w)
    assert rel_error(gx, finite_difference(loss, x)) < 1e-6
    for name, p in pool.parameters().items():
        assert rel_error(pool.grads[name], finite_difference(loss, p)) < 1e-6, name


def test_subgraph_embedding_takes_the_keys_queries_return():
    import networkx as nx
    from ruvector.errors import NotFound
    from ruvector.graph import GraphStore
    rng = np.random.default_rng(0)
    G = nx.relabel_nodes(nx.path_graph(6), {i: f"n{i}" for i in range(6)})
    for n in G:
        G.nodes[n]["embedding"] = rng.standard_normal(4)
    g = GraphStore.from_networkx(G)
    keys = [row[0] for row in g.query("MATCH (a {key: 'n2'})--(b) RETURN b").rows]
    by_key = subgraph_embedding(g, keys)
    by_index = subgraph_embedding(g.features, [g.index_of(k) for k in keys])
    np.testing.assert_allclose(by_key[0], by_index[0])
    np.testing.assert_allclose(subgraph_embedding(g, [1, 3])[0],  # no int keys: indices
                               subgraph_embedding(g.features, [1, 3])[0])
    ints = GraphStore.from_networkx(nx.relabel_nodes(G, {f"n{i}": 10 * i for i in range(6)}))
    np.testing.assert_allclose(subgraph_embedding(ints, [10, 30])[0],   # int keys are keys
                               subgraph_embedding(ints, [1, 3], by="index")[0])
    with pytest.raises(NotFound):
        subgraph_embedding(ints, [1, 3])
    with pytest.raises(InvalidInput):
        subgraph_embedding(g, [0], by="name")
    with pytest.raises(InvalidInput):
        subgraph_embedding(g.features, [0], by="key")
