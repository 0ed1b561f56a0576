"""``ruvector selftest``: passes on this build, and names the check a broken kernel fails."""
import pytest

from ruvector import InvalidConfig
from ruvector.cli import main
from ruvector.kernels import dense
from ruvector.selftest import SUITE_NAMES, run
from ruvector.selftest.checks import SUITES


def test_every_suite_has_checks_and_all_pass(capsys):
    assert tuple(SUITES) == SUITE_NAMES
    assert main(["selftest"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.split()[:1] and
            line.split()[0] in SUITE_NAMES]
    assert len(rows) == sum(map(len, SUITES.values())) >= 19
    assert all(row.endswith("pass") for row in rows)
    assert "0 failed" in out


def test_a_broken_kernel_fails_by_name(monkeypatch, capsys):
    for name in ("forward_serial", "forward_parallel"):
        kernel = getattr(dense, name)

        def skewed(*args, kernel=kernel):   # softmax scale 1% off
            return kernel(*args[:7], args[7] * 1.01, *args[8:])
        monkeypatch.setattr(dense, name, skewed)
    assert main(["selftest", "--suite", "standard"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out
    assert "selftest failed: standard / forward: mask, causal" in captured.err
    assert "-D" in captured.err.split("worst: ")[1]   # the case: one of the input ranks
    monkeypatch.undo()
    assert main(["selftest", "--suite", "standard"]) == 0


def test_a_check_that_raises_is_a_failure(monkeypatch):
    def broken(rng):
        raise ValueError("boom")
    monkeypatch.setitem(SUITES, "query", [("raises", broken)])
    (result,) = run(["query"], report=False)
    assert not result.passed and result.failure == "ValueError: boom"
    with pytest.raises(InvalidConfig, match="suite"):
        run(["nope"], report=False)
