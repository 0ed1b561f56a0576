"""`ruvector graph import | info | query`, `bench query` and the graph part of the demo."""
import json

import networkx as nx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ruvector import cli
from ruvector.cli.demo import run_graph_demo
from ruvector.graph import GraphStore


def _tables(tmp_path):
    nodes = pa.table({"key": [1, 2, 3], "label": ["A", "B", "B"], "age": [10, 20, 30],
                      "embedding": [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]})
    edges = pa.table({"source": [1, 1, 2], "target": [2, 3, 3], "type": ["T", "T", "U"]})
    pq.write_table(nodes, tmp_path / "nodes.parquet")
    pq.write_table(edges, tmp_path / "edges.parquet")
    return nodes, edges


def test_import_info_query(tmp_path, capsys):
    _tables(tmp_path)
    out = tmp_path / "g"
    assert cli.main(["graph", "import", str(tmp_path / "nodes.parquet"),
                     str(tmp_path / "edges.parquet"), str(out)]) == 0
    assert "3 nodes and 3 edges" in capsys.readouterr().out
    assert cli.main(["graph", "info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["nodes"] == 3 and info["labels"] == {"A": 1, "B": 2}
    assert info["edge_types"] == {"T": 2, "U": 1} and info["dim"] == 2

    assert cli.main(["graph", "query", str(out), "MATCH (a {key: $s})-->(b) RETURN b.key, b.age "
                     "ORDER BY b.key", "--param", "s=1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["columns"] == ["b.key", "b.age"] and res["rows"] == [[2, 20], [3, 30]]

    np.save(tmp_path / "q.npy", np.array([0.0, 1.0]))
    target = tmp_path / "rows.parquet"
    assert cli.main(["graph", "query", str(out), "MATCH (a {key: 1})-->(b) ATTEND BY $q TOP 1 "
                     "RETURN b.key AS k, score(b) AS w", "--param", f"q=@{tmp_path / 'q.npy'}",
                     "--out", str(target)]) == 0
    table = pq.read_table(target)
    assert table.column("k").to_pylist() == [2]
    assert table.column("w").to_pylist()[0] > 0.5

    assert cli.main(["graph", "query", str(out), "MATCH (a:B) RETURN a.key ORDER BY a.key"]) == 0
    assert capsys.readouterr().out.splitlines() == ["a.key", "2", "3"]
    assert cli.main(["graph", "query", str(out), "MATCH (a:B) RETURN a", "--explain"]) == 0
    assert "label scan" in capsys.readouterr().out


def test_query_errors_exit_2(tmp_path, capsys):
    _tables(tmp_path)
    out = tmp_path / "g"
    cli.main(["graph", "import", str(tmp_path / "nodes.parquet"), str(tmp_path / "edges.parquet"),
              str(out), "--quiet"])
    assert cli.main(["graph", "query", str(out), "MATCH (a RETURN a"]) == 2
    err = capsys.readouterr().err
    assert "line 1, column 10" in err and "^" in err
    assert cli.main(["graph", "query", str(out), "MATCH (a {key: $s}) RETURN a"]) == 2
    assert "missing parameter" in capsys.readouterr().err
    assert cli.main(["graph", "query", str(out), "MATCH (a) RETURN a", "--param", "oops"]) == 2
    assert cli.main(["graph", "import", str(tmp_path / "nodes.parquet"), str(out)]) == 2
    assert cli.main(["graph", "info", str(tmp_path / "missing")]) == 2


def test_import_csv_and_graphml(tmp_path, capsys):
    pcsv.write_csv(pa.table({"key": ["x", "y"], "label": ["P", "P"]}), tmp_path / "n.csv")
    pcsv.write_csv(pa.table({"source": ["x"], "target": ["y"], "weight": [2.5]}),
                   tmp_path / "e.csv")
    assert cli.main(["graph", "import", str(tmp_path / "n.csv"), str(tmp_path / "e.csv"),
                     str(tmp_path / "c"), "--undirected"]) == 0
    g = GraphStore.load(tmp_path / "c")
    assert not g.directed and g.query("MATCH (a {key: 'y'})-->(b) RETURN b.key").rows == [("x",)]
    G = nx.DiGraph()
    G.add_node("u", label="P", age=3)
    G.add_edge("u", "v", type="R")
    nx.write_graphml(G, tmp_path / "g.graphml")
    assert cli.main(["graph", "import", str(tmp_path / "g.graphml"), str(tmp_path / "gm")]) == 0
    g = GraphStore.load(tmp_path / "gm")
    assert g.query("MATCH (a:P)-[r:R]->(b) RETURN a.age, b.key").rows == [(3, "v")]


def test_import_reads_embeddings_from_a_column_graphml_or_npy(tmp_path, capsys):
    vectors = [[1.0, 0.0], [0.6, 0.8]]
    pq.write_table(pa.table({"key": ["x", "y"], "vec": vectors}), tmp_path / "n.parquet")
    pcsv.write_csv(pa.table({"key": ["x", "y"], "vec": ["[1, 0]", "0.6 0.8"]}),
                   tmp_path / "n.csv")
    pcsv.write_csv(pa.table({"key": ["x", "y"]}), tmp_path / "plain.csv")
    pcsv.write_csv(pa.table({"source": ["x"], "target": ["y"]}), tmp_path / "e.csv")
    np.save(tmp_path / "emb.npy", np.array(vectors))
    for i, (files, options) in enumerate([
            (["n.parquet", "e.csv"], ["--embedding-column", "vec"]),
            (["n.csv", "e.csv"], ["--embedding-column", "vec"]),
            (["plain.csv", "e.csv"], ["--embeddings", str(tmp_path / "emb.npy")])]):
        assert cli.main(["graph", "import", *[str(tmp_path / f) for f in files],
                         str(tmp_path / f"g{i}"), *options, "--quiet"]) == 0
        g = GraphStore.load(tmp_path / f"g{i}")
        np.testing.assert_allclose(g.features, vectors, rtol=1e-6)
    G = nx.DiGraph([("x", "y")])
    G.nodes["x"]["vec"], G.nodes["y"]["vec"] = "1 0", "[0.6, 0.8]"
    nx.write_graphml(G, tmp_path / "v.graphml")
    assert cli.main(["graph", "import", str(tmp_path / "v.graphml"), str(tmp_path / "gv"),
                     "--embedding-column", "vec", "--quiet"]) == 0
    np.testing.assert_allclose(GraphStore.load(tmp_path / "gv").features, vectors, rtol=1e-6)
    np.save(tmp_path / "short.npy", np.ones((1, 2)))
    assert cli.main(["graph", "import", str(tmp_path / "plain.csv"), str(tmp_path / "e.csv"),
                     str(tmp_path / "bad"), "--embeddings", str(tmp_path / "short.npy")]) == 2
    assert "1 rows for 2 nodes" in capsys.readouterr().err
    pcsv.write_csv(pa.table({"key": ["x"], "embedding": ["a b"]}), tmp_path / "text.csv")
    assert cli.main(["graph", "import", str(tmp_path / "text.csv"), str(tmp_path / "e.csv"),
                     str(tmp_path / "bad2")]) == 2
    assert "cannot read a vector" in capsys.readouterr().err


def test_bench_query_small(capsys, monkeypatch):
    from benchmarks import query as bench_query
    small_attend = bench_query.bench_attend
    small_filter = bench_query.bench_filter
    monkeypatch.setattr(bench_query, "bench_attend",
                        lambda: small_attend(n=2000, degree=4, dim=8, starts=5))
    monkeypatch.setattr(bench_query, "bench_filter",
                        lambda grand_cypher: small_filter(n=500, degree=2, grand_cypher=False))
    assert cli.main(["bench", "query", "--json", "--no-grand-cypher"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["attend_3hop"]["rows"] > 0 and result["attend_3hop"]["median_ms"] > 0
    assert result["filter_2hop"]["ruvector_ms"] > 0


def test_graph_demo_walks_toward_cosette():
    lines = []
    res = run_graph_demo(out=lines.append)
    assert len(res) == 6 and "Cosette" in {r["reached"] for r in res}
    scores = [r["score"] for r in res]
    assert scores == sorted(scores, reverse=True)
    assert any("subgraph embedding" in line for line in lines)
