"""The fuzz suites of ``tests/fuzz/hostile.py``, each in a subprocess (a native crash fails
the test with the case that caused it instead of killing pytest).  ``--fuzz-long`` runs ten
times as many cases."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("suite, cases, minimum", [("api", 2500, 2000), ("query", 10000, 10000)])
def test_hostile_input_gives_a_result_or_a_typed_error(suite, cases, minimum, request,
                                                       tmp_path):
    scale = 10 if request.config.getoption("--fuzz-long") else 1
    log = tmp_path / "cases.log"
    before = set(os.listdir(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.hostile", suite, str(cases * scale), "20261204",
         str(log)], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    last = [line for line in log.read_text().splitlines() if line.startswith(("case", "query"))]
    assert proc.returncode == 0, (
        f"exit {proc.returncode}; last cases: {last[-2:]}\n{proc.stderr[-6000:]}")
    assert set(os.listdir(ROOT)) <= before, "hostile paths wrote into the checkout"
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    total = sum(c["cases"] for c in counts.values())
    print(f"\n{suite}: {total} cases", json.dumps(counts))
    assert total >= minimum * scale
    assert all(c["cases"] >= 20 * scale for c in counts.values())  # every entry point ran
    assert sum(c["answered"] for c in counts.values()) > total // 10  # not all refused
