"""``ruvector selftest``: numerical checks of the installed build.

Every kernel against an independent reference on small inputs — float64 NumPy formulas,
central finite differences for the backward passes, brute force for index and query
answers — as a pass/fail table.  ``run()`` is the Python entry point.
"""
import sys
import time
from dataclasses import dataclass

import numpy as np

# The checks import every subsystem, so they load on first run, not with the CLI.
SUITE_NAMES = ("standard", "multihead", "geometric", "sparse", "graph", "index", "query")
SEED = 20261204


@dataclass
class CheckResult:
    suite: str
    name: str
    error: float          # the largest deviation measured (NaN when the check raised)
    tolerance: float
    seconds: float
    case: str = ""        # the case with the largest error, for a check of several
    failure: str = ""     # the exception a check raised, if any

    @property
    def passed(self):
        return not self.failure and bool(self.error <= self.tolerance)


def run_check(suite, name, fn):
    """One check, its exceptions caught and reported as a failure."""
    t0 = time.perf_counter()
    try:
        with np.errstate(all="ignore"):
            error, tolerance = fn(np.random.default_rng(SEED))
        case = ""
        if isinstance(error, dict):
            case, error = max(error.items(), key=lambda item: _sort_key(item[1]))
        failure = "" if np.isfinite(error) else "the error is not finite"
    except Exception as exc:  # a check that raises has failed; the table says why
        error, tolerance, case = float("nan"), float("nan"), ""
        failure = f"{type(exc).__name__}: {exc}"
    return CheckResult(suite, name, float(error), float(tolerance),
                       time.perf_counter() - t0, case, failure)


def _sort_key(error):
    return np.inf if np.isnan(error) else error


def run(suites=None, verbose=False, report=True, out=None):
    """Run the checks of ``suites`` (names from :data:`SUITE_NAMES`; default all), printing
    a row per check to ``out`` (default stdout) when ``report``; returns the CheckResult
    list."""
    from .._validate import choice
    from .checks import SUITES
    suites = list(SUITE_NAMES) if suites is None else list(suites)
    for suite in suites:
        choice(suite, "suite", SUITE_NAMES)
    results = []
    out = (out or sys.stdout) if report else None
    if out is not None:
        print(f"{'suite':<10} {'check':<66} {'error':>9} {'limit':>9}  result", file=out)
    for suite in suites:
        for name, fn in SUITES[suite]:
            result = run_check(suite, name, fn)
            results.append(result)
            if out is not None:
                _print_row(result, verbose, out)
    return results


def _print_row(r, verbose, out):
    verdict = "pass" if r.passed else "FAIL"
    timing = f"  {r.seconds:6.2f} s" if verbose else ""
    print(f"{r.suite:<10} {r.name:<66} {r.error:9.1e} {r.tolerance:9.1e}  {verdict}{timing}",
          file=out, flush=True)
    if r.failure:
        print(f"{'':<10} {r.failure}", file=out)
    elif verbose and r.case:
        print(f"{'':<10} largest error: {r.case}", file=out)


__all__ = ["run", "run_check", "CheckResult", "SUITE_NAMES"]
