"""The example scripts run and show what they claim."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_graph_query_example(capsys):
    lines = []
    result = load("graph_query").run(out=lines.append)
    assert result["hubs"][0] == ("Medici", 6)
    assert "Strozzi" in result["two_hops"] and "Medici" not in result["two_hops"]
    scores = [s for _, s in result["toward_strozzi"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 5
    assert "index lookup" in result["plan"]
    assert len(lines) == 3


def test_geometric_sparse_example():
    result = load("geometric_sparse").run(out=lambda *_: None)
    assert result["weights"].argmax() == len(result["weights"]) - 1   # a leaf attends to itself
    assert result["dist_after"] < result["dist_before"]
    assert result["windowed_error"] < 1e-5


def test_rerank_quality_example():
    lines = []
    result = load("rerank_quality").run(seeds=range(2), limit=400, out=lines.append)
    assert list(result) == ["ceiling", "hnsw", "exact", "attention", "mmr", "learned"]
    assert len(lines) == 7 and "ndcg@10" in lines[0]
    for method, cols in result.items():
        assert 0 <= cols["recall@10"][0] <= result["ceiling"]["recall@10"][0] + 1e-12, method
    # the learned distance is chosen on validation queries, its untrained start among them
    assert result["learned"]["ndcg@10"][0] >= 0.9 * result["hnsw"]["ndcg@10"][0]
