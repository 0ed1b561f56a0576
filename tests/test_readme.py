"""Every Python block of README.md runs as written (each in a fresh namespace and a scratch
directory), so the manual cannot drift from the code."""
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_blocks():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
        line = text[:match.start()].count("\n") + 2
        # leading newlines keep tracebacks on README's own line numbers
        blocks.append(pytest.param("\n" * (line - 1) + match.group(1), id=f"README.md:{line}"))
    return blocks


def test_readme_has_python_blocks():
    assert len(python_blocks()) >= 5


@pytest.mark.parametrize("code", python_blocks())
def test_readme_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
