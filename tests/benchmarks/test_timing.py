"""The benchmarks' own honesty checks: machine metadata and baselines that disagree."""
from benchmarks import graph
from benchmarks.timing import baseline_disagreement, machine


def test_baseline_figures_that_disagree_by_more_than_3x_are_flagged():
    assert baseline_disagreement(10.0, 12.0) is None
    assert baseline_disagreement(10.0, 3.4) is None
    assert "80.000 ms in its own process, 2.000 ms in this one" in baseline_disagreement(80.0, 2.0)
    assert baseline_disagreement(1.0, 3.5) is not None
    assert baseline_disagreement(0.0, 1.0) is not None


def test_graph_rows_print_a_speedup_only_when_the_baseline_agrees_with_itself():
    rows = {"n/a": {"forward": {"ms": 1.0}, "pyg": {"csr": {"forward_ms": 2.0},
                                                    "edge_index": {"forward_ms": 5.0}}},
            "n/b": {"forward": {"ms": 1.0}, "pyg": {"edge_index": {"forward_ms": 90.0}}}}
    same_process = {"results": {"n/a": {"csr": {"forward_ms": 2.2}},
                                "n/b": {"edge_index": {"forward_ms": 8.0}}}}
    graph._compare(rows, same_process)
    assert rows["n/a"]["forward_speedup_vs_pyg_best"] == 2.0 and "pyg_suspect" not in rows["n/a"]
    assert "forward_speedup_vs_pyg_best" not in rows["n/b"]
    assert rows["n/b"]["pyg_suspect"].startswith("baseline suspect")


def test_machine_names_cpu_isa_threads_and_versions():
    m = machine()
    assert m["cpu"] and m["arch"] and m["isa"] in ("avx512", "avx2", "generic")
    assert m["threads"] >= 1 and "numba" in m["versions"]
