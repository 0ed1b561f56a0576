"""Reproducers of hostile-input findings: each raised an untyped error, crashed, or was
silently accepted; each now raises the typed error named here (or behaves as stated)."""
import networkx as nx
import numpy as np
import pyarrow as pa
import pytest

import ruvector as rv
from ruvector import (DimensionMismatch, InvalidConfig, InvalidInput, NotFound,
                      QueryError, StorageError)
from ruvector.attention.sparse import BlockSparseMask, WindowedMask
from ruvector.graph import GraphStore
from ruvector.gnn import subgraph_embedding


@pytest.fixture
def store():
    s = rv.VectorStore(4, "l2")
    s.add(np.random.default_rng(0).standard_normal((5, 4)))
    return s


@pytest.fixture
def graph():
    G = nx.path_graph(4)
    for n in G:
        G.nodes[n]["embedding"] = np.ones(4) * n
    return GraphStore.from_networkx(G)


CASES = {
    "get a string id": (lambda s, g: s.get("x"), InvalidInput),
    "get None": (lambda s, g: s.get(None), InvalidInput),
    "get a float id (was truncated)": (lambda s, g: s.get(1.5), InvalidInput),
    "filter of float ids (was truncated)": (lambda s, g: s.search(np.ones(4), 2,
                                                                  filter=[1.5]), InvalidInput),
    "metadata of strings": (lambda s, g: s.metadata(["a"]), InvalidInput),
    "complex vectors (imaginary part was dropped)": (lambda s, g: s.add(np.ones(4) + 1j),
                                                     InvalidInput),
    "complex queries": (lambda s, g: s.search(np.ones(4) * 1j), InvalidInput),
    "from_arrow of a non-table": (lambda s, g: rv.VectorStore.from_arrow("x"), InvalidInput),
    "from_arrow of an empty table": (lambda s, g: rv.VectorStore.from_arrow(
        pa.table({"vector": pa.array([], pa.list_(pa.float32()))})), InvalidInput),
    "from_arrow with null vectors": (lambda s, g: rv.VectorStore.from_arrow(
        pa.table({"vector": pa.array([[1.0, 2.0], None])})), InvalidInput),
    "metric as an array": (lambda s, g: rv.VectorStore(4, np.ones(3)), InvalidConfig),
    "include that is not a list": (lambda s, g: s.search(np.ones(4), 2, include=3),
                                   InvalidInput),
    "load_state_dict(None)": (lambda s, g: rv.MultiHeadAttention(8, 2).load_state_dict(None),
                              InvalidConfig),
    "global tokens as strings": (lambda s, g: WindowedMask(2, global_tokens=["a"]),
                                 InvalidInput),
    "ragged block pairs": (lambda s, g: BlockSparseMask(2, [(0,), (1, 2, 3)]), InvalidInput),
    "window beyond int64": (lambda s, g: WindowedMask(2**63), InvalidConfig),
    "forward_neighborhood('x')": (lambda s, g: rv.GATLayer(4, 3).forward_neighborhood(
        "x", np.ones((3, 4)), np.array([[0, 1], [1, 2]])), InvalidInput),
    "ragged edge_index": (lambda s, g: rv.GINLayer(4, 8, 3)(np.ones((3, 4)),
                                                           [[0, 1], [1]]), InvalidInput),
    "causal as an array": (lambda s, g: rv.scaled_dot_product_attention(
        np.ones((2, 4)), np.ones((2, 4)), np.ones((2, 4)), causal=np.ones(3)), InvalidInput),
    "huge layer width": (lambda s, g: rv.MultiHeadAttention(2**40, 2), InvalidConfig),
    "subgraph nodes 'x' (a key not in the store)": (lambda s, g: subgraph_embedding(g, "x"),
                                                    NotFound),
    "subgraph nodes 'x' of a feature array": (lambda s, g: subgraph_embedding(
        np.ones((3, 4)), "x"), InvalidInput),
    "subgraph nodes None": (lambda s, g: subgraph_embedding(g, None), InvalidInput),
    "labels=3": (lambda s, g: g.add_node("z", labels=3), InvalidInput),
    "edge weight 'x'": (lambda s, g: g.add_edge(0, 1, weight="x"), InvalidInput),
    "edge weight None": (lambda s, g: g.add_edge(0, 1, weight=None), InvalidInput),
    "add_edges with a malformed tuple": (lambda s, g: g.add_edges([(0,)]), InvalidInput),
    "add_edges of an int": (lambda s, g: g.add_edges(5), InvalidInput),
    "k_hop with an array k": (lambda s, g: g.k_hop(0, np.ones(3)), InvalidInput),
    "direction as an array": (lambda s, g: g.neighbors(0, direction=np.ones(2)),
                              InvalidInput),
    "an unknown node": (lambda s, g: g.neighbors("nope"), NotFound),
    "a query literal beyond 64 bits": (lambda s, g: g.query(
        "MATCH (a)-->(b) ATTEND BY $v TOP 99999999999999999999 RETURN b",
        {"v": [1.0, 0, 0, 0]}), QueryError),
    "save(None)": (lambda s, g: s.save(None), InvalidInput),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_input_raises_a_typed_error(name, store, graph):
    call, error = CASES[name]
    with pytest.raises(error):
        call(store, graph)


def test_what_used_to_hang_or_be_truncated_now_answers(store, graph):
    assert graph.k_hop(0, 2**62) == [1, 2, 3]          # a huge k used to spin for ever
    assert 1.5 not in store and "1" not in store and 1 in store
    assert store.search(np.ones((2, 4)), 2**31).ids.shape == (2, 5)


def test_graph_store_saves_numpy_property_values_and_refuses_huge_keys(tmp_path):
    g = GraphStore()
    g.add_node(1, v=np.int64(3), f=np.float32(2.5), flag=np.bool_(True), arr=np.arange(3))
    g.save(tmp_path / "g")
    props = GraphStore.load(tmp_path / "g").node(1)["properties"]
    assert props == {"v": 3, "f": 2.5, "flag": True, "arr": [0, 1, 2]}
    g.add_node(2**70)
    with pytest.raises(InvalidInput, match="64-bit"):
        g.save(tmp_path / "h")
    with pytest.raises(DimensionMismatch):
        GraphStore(3).add_node("w", embedding=np.ones(4))
    with pytest.raises(StorageError):
        GraphStore.load(tmp_path / "missing")
