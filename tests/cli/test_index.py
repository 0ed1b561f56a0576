import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ruvector import cli
from ruvector.cli.demo import run_demo
from ruvector.index import VectorStore


@pytest.fixture
def vectors(rng):
    return rng.standard_normal((300, 8)).astype(np.float32)


def test_build_query_info_from_npy(tmp_path, vectors, capsys):
    np.save(tmp_path / "x.npy", vectors)
    np.save(tmp_path / "q.npy", vectors[:3])
    out = tmp_path / "store"
    assert cli.main(["index", "build", str(tmp_path / "x.npy"), str(out), "--metric", "l2"]) == 0
    assert "indexed 300 vectors" in capsys.readouterr().out
    assert cli.main(["index", "query", str(out), str(tmp_path / "q.npy"), "-k", "4", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [row[0] for row in res["ids"]] == [0, 1, 2]
    assert np.allclose(res["scores"], -np.array(res["distances"]))  # plain search: -distance
    assert cli.main(["index", "query", str(out), str(tmp_path / "q.npy"), "-k", "2"]) == 0
    assert capsys.readouterr().out.startswith("q0: 0(")
    assert cli.main(["index", "info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["count"] == 300 and info["dim"] == 8 and info["metric"] == "l2"


def test_build_from_parquet_with_ids_and_metadata_rerank_to_parquet(tmp_path, vectors):
    table = pa.table({"key": np.arange(500, 800),
                      "emb": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 8),
                      "lang": ["en", "fr", "de"] * 100})
    pq.write_table(table, tmp_path / "in.parquet")
    out = tmp_path / "store"
    assert cli.main(["index", "build", str(tmp_path / "in.parquet"), str(out), "--quiet",
                     "--vector-column", "emb", "--id-column", "key"]) == 0
    store = VectorStore.load(out)
    assert 500 in store and store.metadata([501]).column("lang").to_pylist() == ["fr"]
    pq.write_table(table.slice(0, 5), tmp_path / "q.parquet")
    assert cli.main(["index", "query", str(out), str(tmp_path / "q.parquet"), "-k", "3",
                     "--vector-column", "emb", "--rerank", "attention", "--candidates", "30",
                     "--out", str(tmp_path / "res.parquet")]) == 0
    res = pq.read_table(tmp_path / "res.parquet")
    assert res.column_names == ["query", "rank", "id", "distance", "score"]
    assert res.num_rows == 15


def test_cli_errors_are_reported_not_raised(tmp_path, capsys):
    assert cli.main(["index", "info", str(tmp_path / "nothing")]) == 2
    assert "not a saved store" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("1,2")
    assert cli.main(["index", "build", str(tmp_path / "x.txt"), str(tmp_path / "s")]) == 2
    assert "unsupported" in capsys.readouterr().err


def test_demo_reports_recall_and_timings():
    lines = []
    store = run_demo(out=lines.append, n=2000, dim=16, queries=40)
    text = "\n".join(lines)
    assert len(store) == 2000
    assert "recall@10" in text and "QPS" in text and "all 400 results match: True" in text
    hnsw_recall = float(lines[2].split("recall@10")[1].split()[0])
    assert hnsw_recall >= 0.9
