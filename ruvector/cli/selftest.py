"""``ruvector selftest``: every kernel of this install against its NumPy reference."""
import sys
import time


def _main(args):
    from ..selftest import run
    suites = None if args.suite == "all" else [args.suite]
    t0 = time.perf_counter()
    results = run(suites, verbose=args.verbose)
    failed = [r for r in results if not r.passed]
    took = time.perf_counter() - t0
    print(f"{len(results)} checks, {len(results) - len(failed)} passed, {len(failed)} failed "
          f"in {took:.1f} s")
    for r in failed:
        where = f", worst: {r.case}" if r.case else ""
        print(f"ruvector: selftest failed: {r.suite} / {r.name}"
              + (f" ({r.failure})" if r.failure else
                 f" (error {r.error:.2e} > limit {r.tolerance:.1e}{where})"), file=sys.stderr)
    return 1 if failed else 0


def register(sub):
    from ..selftest import SUITE_NAMES
    p = sub.add_parser("selftest", help="check this install's kernels against NumPy "
                                        "references, finite differences and brute force")
    p.add_argument("--suite", choices=["all", *SUITE_NAMES], default="all",
                   help="which checks to run (default all)")
    p.add_argument("-v", "--verbose", action="store_true", help="seconds per check too")
    p.set_defaults(func=_main)
