import json

import numba
import numpy as np

from ruvector import _compile_notice
from ruvector.cli import main


def _fresh_kernel(module):
    """A new jitted function that claims to live in ``module`` (compiles on first call)."""
    namespace = {"__name__": module}
    exec("def twice(x):\n    return 2 * x\n", namespace)
    return numba.njit(namespace["twice"])


def test_first_compile_of_a_family_is_announced_once_on_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(_compile_notice, "_is_tty", lambda stream: True)
    monkeypatch.delenv("RUVECTOR_QUIET", raising=False)
    _fresh_kernel("ruvector.kernels.notice_a")(np.ones(3))
    _fresh_kernel("ruvector.kernels.notice_a")(np.ones(3))   # same family: no second line
    _fresh_kernel("elsewhere.module")(np.ones(3))             # not ruvector's: nothing
    lines = capsys.readouterr().err.splitlines()
    assert lines == [l for l in lines if "notice_a kernels for first use" in l] and len(lines) == 1
    monkeypatch.setenv("RUVECTOR_QUIET", "1")
    _fresh_kernel("ruvector.kernels.notice_b")(np.ones(3))
    monkeypatch.delenv("RUVECTOR_QUIET")
    monkeypatch.setattr(_compile_notice, "_is_tty", lambda stream: False)
    _fresh_kernel("ruvector.kernels.notice_c")(np.ones(3))
    assert capsys.readouterr().err == ""


def test_warmup_runs_the_chosen_suite(capsys):
    assert main(["warmup", "--suite", "geometric", "--json"]) == 0
    timings = json.loads(capsys.readouterr().out)
    assert list(timings) == ["geometric"] and timings["geometric"] >= 0
