import networkx as nx
import numpy as np
import pytest

from ruvector import CorruptFile, DimensionMismatch, GATLayer, InvalidInput, NotFound
from ruvector.graph import GraphStore


def small(rng):
    g = GraphStore(4)
    for k in "abcde":
        g.add_node(k, labels=("Person",) if k < "d" else ("City",),
                   embedding=rng.standard_normal(4), name=k.upper())
    g.add_edge("a", "b", type="KNOWS", weight=2.0, since=2020)
    g.add_edge("a", "b", type="KNOWS")          # a parallel edge
    g.add_edge("b", "c", type="KNOWS")
    g.add_edge("c", "d", type="LIVES_IN")
    g.add_edge("e", "a", type="HOSTS")
    return g


def test_nodes_edges_neighbors_k_hop(rng):
    g = small(rng)
    assert g.num_nodes == 5 and g.num_edges == 5
    assert g.node("a")["properties"] == {"name": "A"} and g.node("d")["labels"] == ("City",)
    assert g.neighbors("a") == ["b"]
    assert g.neighbors("a", "in") == ["e"]
    assert g.neighbors("a", "both") == ["b", "e"]
    assert g.neighbors("c", type="LIVES_IN") == ["d"]
    assert g.k_hop("a", 2) == ["b", "c"]
    assert g.k_hop("a", 3, direction="both") == ["b", "e", "c", "d"]
    assert g.features.shape == (5, 4)
    with pytest.raises(NotFound):
        g.node("zz")
    with pytest.raises(InvalidInput, match="exists"):
        g.add_node("a")
    with pytest.raises(DimensionMismatch):
        g.add_node("f", embedding=np.ones(3))


def test_csr_keeps_parallel_edges_and_invalidates(rng):
    g = small(rng)
    mat, ids = g.csr("in")
    b = g.index_of("b")
    assert mat.indptr[b + 1] - mat.indptr[b] == 2  # both a -> b edges, not summed
    np.testing.assert_array_equal(mat.data[mat.indptr[b]:mat.indptr[b + 1]], [2.0, 1.0])
    assert sorted(ids[mat.indptr[b]:mat.indptr[b + 1]].tolist()) == [0, 1]
    assert g.edge_index().shape == (2, 5)
    assert g.edge_index("KNOWS").shape == (2, 3)
    g.remove_edge("a", "b")
    assert g.num_edges == 3 and g.csr("in")[0].nnz == 3
    g.remove_node("c")
    assert g.num_nodes == 4 and g.num_edges == 1 and g.neighbors("e") == ["a"]
    assert g.index_of("d") == 2  # re-numbered
    with pytest.raises(NotFound):
        g.remove_edge("a", "b")


def test_undirected_store_exposes_both_directions(rng):
    G = nx.path_graph(4)
    g = GraphStore.from_networkx(G)
    assert not g.directed and g.num_edges == 3
    assert g.edge_index().shape == (2, 6)
    assert g.neighbors(1) == [2, 0] or sorted(g.neighbors(1)) == [0, 2]


def test_networkx_round_trip(rng):
    G = nx.MultiDiGraph()
    G.add_node("x", label=["L"], embedding=np.arange(3, dtype=np.float32), color="red")
    G.add_node("y", embedding=np.ones(3, dtype=np.float32))
    G.add_edge("x", "y", type="T", weight=0.5, note="n")
    G.add_edge("x", "y", type="U")
    g = GraphStore.from_networkx(G)
    H = g.to_networkx()
    assert set(H.nodes) == {"x", "y"} and H.number_of_edges() == 2
    assert H.nodes["x"]["color"] == "red" and H.nodes["x"]["label"] == ["L"]
    np.testing.assert_array_equal(H.nodes["x"]["embedding"], np.arange(3))
    types = sorted(d["type"] for _, _, d in H.edges(data=True))
    assert types == ["T", "U"]
    assert any(d.get("note") == "n" and d["weight"] == 0.5 for _, _, d in H.edges(data=True))
    karate = GraphStore.from_networkx(nx.karate_club_graph())
    assert karate.num_nodes == 34 and karate.num_edges == 78


def test_layers_run_on_the_store(rng):
    g = small(rng)
    layer = GATLayer(4, 3, heads=2, seed=0)
    out = layer.forward(g.features, g)
    np.testing.assert_allclose(out, layer.forward(g.features, g.edge_index()), rtol=1e-6)


def test_save_load_and_corruption(rng, tmp_path):
    g = small(rng)
    g.add_edge("d", "e", feature=[1.0, 2.0])
    path = tmp_path / "g"
    g.save(path)
    h = GraphStore.load(path)
    assert h.keys == g.keys and h.num_edges == g.num_edges
    np.testing.assert_array_equal(h.features, g.features)
    np.testing.assert_array_equal(h.edge_index(), g.edge_index())
    assert h.edge(0)["properties"] == {"since": 2020} and h.node("a")["labels"] == ("Person",)
    np.testing.assert_array_equal(h.edge(5)["feature"], [1.0, 2.0])
    f = next((path).glob("gen-*/edges.arrow"))
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 1
    f.write_bytes(bytes(data))
    with pytest.raises(CorruptFile):
        GraphStore.load(path)
    bad = GraphStore()
    bad.add_node(("tuple", "key"))
    with pytest.raises(InvalidInput, match="saved"):
        bad.save(tmp_path / "bad")


def test_vector_index_finds_start_nodes(rng):
    g = small(rng)
    vi = g.vector_index()
    res = vi.search(g.features[g.index_of("c")], k=1)
    assert g.key_of(res.ids[0]) == "c"
    g.add_node("f", embedding=g.features[0] * 3)
    assert len(g.vector_index()) == 6  # rebuilt after the change


def test_bulk_import_from_arrow_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    nodes = pa.table({"key": ["a", "b", "c"], "label": ["P", None, "C"],
                      "embedding": [[1.0, 0.0], [0.0, 1.0], None], "age": [30, 40, None]})
    edges = pa.table({"source": ["a", "b", "a"], "target": ["b", "c", "b"],
                      "type": ["KNOWS", "IN", "KNOWS"], "weight": [1.0, 2.0, None]})
    g = GraphStore.from_arrow(nodes, edges)
    assert g.num_nodes == 3 and g.num_edges == 3
    assert g.node("a")["labels"] == ("P",) and g.node("a")["properties"] == {"age": 30}
    assert g.node("c")["embedding"] is None and g.edge(1)["weight"] == 2.0
    pq.write_table(nodes, tmp_path / "n.parquet")
    pq.write_table(edges, tmp_path / "e.parquet")
    h = GraphStore.from_parquet(tmp_path / "n.parquet", tmp_path / "e.parquet")
    np.testing.assert_array_equal(h.edge_index(), g.edge_index())
    with pytest.raises(InvalidInput, match="source"):
        GraphStore.from_arrow(nodes, pa.table({"src": ["a"], "target": ["b"]}))
    with pytest.raises(NotFound):
        GraphStore.from_arrow(nodes, pa.table({"source": ["a"], "target": ["zz"]}))


def test_save_load_bulk_paths_keep_partial_vectors_and_properties(tmp_path):
    g = GraphStore(3)
    g.add_node("a", labels=("X", "Y"), embedding=[1, 2, 3], note={"nested": [1, 2]})
    g.add_node(7)                                      # no embedding, int key
    g.add_node("c", embedding=[0.5, 0, -1])
    g.add_edge("a", 7, type="T", weight=2.5, feature=[1.0, 2.0], since=1999)
    g.add_edge(7, "c")                                 # no feature, no properties
    g.save(tmp_path / "g")
    h = GraphStore.load(tmp_path / "g")
    assert h.keys == ["a", 7, "c"] and h.node("a")["labels"] == ("X", "Y")
    assert h.node(7)["embedding"] is None and h.node("a")["properties"] == {"note": {"nested": [1, 2]}}
    assert np.array_equal(h.features, g.features)
    assert h.edge(0)["properties"] == {"since": 1999} and h.edge(1)["feature"] is None
    assert np.array_equal(h.edge(0)["feature"], [1.0, 2.0]) and h.edge(0)["weight"] == 2.5
    h.add_edge("c", "a", feature=[0.0, 1.0])           # the loaded feature width is enforced
    with pytest.raises(DimensionMismatch):
        h.add_edge("c", "a", feature=[0.0])


def test_repr_names_sizes_labels_and_types():
    g = GraphStore(2)
    g.add_node("x", labels=("Person",), embedding=[1.0, 2.0])
    g.add_node("y", embedding=[0.0, 1.0])
    g.add_edge("x", "y", type="KNOWS")
    assert repr(g) == ("GraphStore(nodes=2, edges=1, directed=True, dim=2, labels=['Person'], "
                       "types=['KNOWS'])")
