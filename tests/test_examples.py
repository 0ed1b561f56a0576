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
