import argparse
import json

import pytest

from ruvector import cli
from benchmarks import attention as bench


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert "ruvector 0.1.0" in capsys.readouterr().out


def test_bench_attention_json_and_table(capsys, monkeypatch):
    monkeypatch.setattr(bench, "SHAPES", {"a_tiny": (1, 1, 1, 50, 8), "b_tiny": (1, 2, 9, 40, 8)})
    monkeypatch.setattr(bench, "MHA", (16, 2, 12))
    assert cli.main(["bench", "attention", "--quick", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["results"]) == {"a_tiny", "b_tiny", "e_mha_d16_h2_L12"}
    row = result["results"]["b_tiny"]
    assert row["ruvector_forward"]["ms"] > 0 and row["numpy_forward"]["ms"] > 0
    assert (result["torch"] is None) == ("torch_forward" not in row)
    machine = result["machine"]
    assert machine["isa"] in ("avx512", "avx2", "generic") and machine["threads"] >= 1
    assert machine["cpu"] and "numpy" in machine["versions"]
    assert cli.main(["bench", "attention", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "a_tiny" in out and f"kernels built for {machine['isa']}" in out
    assert "nan" not in out  # an absent figure is a dash, an absent baseline "not installed"
    assert ("not installed" in out) == (result["torch"] is None)


def test_unknown_command_exits_with_usage(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["nope"])
    assert exc.value.code == 2


def test_bench_index_small(capsys, monkeypatch):
    from benchmarks import index as bench_index
    monkeypatch.setattr(bench_index, "EFS", (16, 64))
    assert cli.main(["bench", "index", "--n", "2000", "--queries", "50", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["results"]["search"]) == {"ef16", "ef64"}
    assert result["results"]["rerank"]["same_ids_as_numpy"] >= 0.98


def test_bench_graph_small(capsys, monkeypatch):
    from benchmarks import graph as bench_graph
    monkeypatch.setattr(bench_graph, "SIZES", (200,))
    monkeypatch.setattr(bench_graph, "measure_in_subprocess", lambda job, module: None)
    monkeypatch.setattr(bench_graph.run, "__defaults__", ((200,), 0.05, 0, 1))
    assert cli.main(["bench", "graph", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["results"]) == {f"200/{n}" for n in bench_graph.LAYERS}
    assert all(r["forward"]["ms"] > 0 for r in result["results"].values())
    assert cli.main(["bench", "graph"]) == 0
    out = capsys.readouterr().out
    assert "PyG best fwd not installed" in out and "nan" not in out


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def test_every_cli_option_has_help_and_no_markup():
    from ruvector.cli import build_parser
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{parser.prog}: {action.dest} has no help text"
        text = parser.format_help()
        assert "``" not in text and ":func:" not in text, parser.prog
