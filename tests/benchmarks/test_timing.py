"""The benchmarks' own honesty checks: machine metadata and baselines that disagree."""
import threading
import time

from benchmarks import graph
from benchmarks.timing import baseline_disagreement, baseline_isa_env, machine, parent_spin, \
    quiesce, speedup_or_suspect


def test_baseline_figures_that_disagree_by_more_than_3x_are_flagged():
    assert baseline_disagreement(10.0, 12.0) is None
    assert baseline_disagreement(10.0, 3.4) is None
    assert "80.000 ms in its own process, 2.000 ms in this one" in baseline_disagreement(80.0, 2.0)
    assert baseline_disagreement(1.0, 3.5) is not None
    assert baseline_disagreement(0.0, 1.0) is not None


def test_a_parent_busy_while_the_baseline_ran_makes_its_figures_suspect():
    assert parent_spin(0.01) is None
    assert "used 40% of a core" in parent_spin(0.4)
    assert speedup_or_suspect(1.0, 2.5, 2.4, 0.0) == (2.5, None)
    speedup, why = speedup_or_suspect(1.0, 2.5, 2.4, 0.5)
    assert speedup is None and why.startswith("baseline suspect")
    assert speedup_or_suspect(1.0, 2.5, None, 0.0)[1] == \
        "baseline suspect: it does not run in this process"
    assert speedup_or_suspect(1.0, 80.0, 2.0, 0.0)[0] is None


def test_quiesce_waits_for_a_spinning_thread_and_gives_up_at_its_limit():
    assert quiesce(limit=0.5)  # nothing spins here
    stop = time.perf_counter() + 0.3
    spinner = threading.Thread(target=lambda: [None for _ in iter(
        lambda: time.perf_counter() < stop, False)])
    spinner.start()
    t0 = time.perf_counter()
    assert not quiesce(limit=0.1)   # still spinning at the limit
    assert quiesce(limit=2.0)       # the spinner stops after 0.3 s
    assert time.perf_counter() - t0 >= 0.25
    spinner.join()


def test_graph_rows_print_a_speedup_only_when_the_baseline_agrees_with_itself():
    rows = {"n/a": {"forward": {"ms": 1.0}, "pyg": {"csr": {"forward_ms": 2.0},
                                                    "edge_index": {"forward_ms": 5.0}}},
            "n/b": {"forward": {"ms": 1.0}, "pyg": {"edge_index": {"forward_ms": 90.0}}}}
    same_process = {"results": {"n/a": {"csr": {"forward_ms": 2.2}},
                                "n/b": {"edge_index": {"forward_ms": 8.0}}}}
    graph._compare(rows, same_process)
    busy = {"n/a": {"forward": {"ms": 1.0}, "pyg": {"csr": {"forward_ms": 2.0}}}}
    graph._compare(busy, {"results": {"n/a": {"csr": {"forward_ms": 2.0}}}}, parent_share=0.3)
    assert "forward_speedup_vs_pyg_best" not in busy["n/a"]
    assert rows["n/a"]["forward_speedup_vs_pyg_best"] == 2.0 and "pyg_suspect" not in rows["n/a"]
    assert "forward_speedup_vs_pyg_best" not in rows["n/b"]
    assert rows["n/b"]["pyg_suspect"].startswith("baseline suspect")


def test_machine_names_cpu_isa_threads_and_versions():
    m = machine()
    assert m["cpu"] and m["arch"] and m["isa"] in ("avx512", "avx2", "generic")
    assert m["threads"] >= 1 and "numba" in m["versions"]


def test_baselines_are_held_to_an_overridden_narrower_width(monkeypatch):
    from ruvector.kernels import _isa
    monkeypatch.setattr(_isa, "ISA", _isa.host_isa())
    assert baseline_isa_env() == {}
    for isa in ("avx2", "generic"):
        monkeypatch.setattr(_isa, "ISA", isa)
        monkeypatch.setattr(_isa, "host_isa", lambda: "avx512")
        env = baseline_isa_env()
        assert env["ATEN_CPU_CAPABILITY"] == {"avx2": "avx2", "generic": "default"}[isa]
        assert {"ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_CORETYPE"} <= set(env)
        assert machine()["baseline_env"] == env


def test_reports_say_what_is_absent_instead_of_nan(capsys):
    from benchmarks import attention
    row = {"ruvector_forward": {"ms": 1.0, "gflops": 2.0}, "ruvector_backward": {"ms": 2.0},
           "backward_over_forward": 2.0}
    attention.report({"threads": 2, "torch": None, "results": {"e_mha": row}})
    out = capsys.readouterr().out
    assert "nan" not in out and "not installed" in out and "–" in out
    graph.report({"degree": 16, "features": 64, "threads": 2, "pyg": None,
                  "results": {"200/gin": {"forward": {"ms": 1.0}, "backward": {"ms": 2.0}}}})
    out = capsys.readouterr().out
    assert "nan" not in out and "PyG best fwd not installed" in out
