"""``ruvector bench SUITE [options]``: runs ``benchmarks/SUITE.py`` of a source checkout (the
benchmark scripts are not installed with the package); the options are the script's own."""
import argparse
import os
import sys
from importlib import import_module

from ..errors import NotFound

SUITES = {
    "attention": "dense attention kernels vs NumPy / PyTorch",
    "index": "VectorStore vs raw hnswlib; re-rank vs NumPy",
    "graph": "GAT / GIN / SAGE vs PyTorch Geometric",
    "sparse": "sparse / top-k / hyperbolic attention vs dense",
    "query": "graph queries: ATTEND latency, 2-hop vs grand-cypher",
    "learned_rerank": "recall of a learned AttentionDistance re-ranker",
}


def _checkout():
    """The folder holding ``benchmarks/``: the working directory or this package's checkout."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for root in (os.getcwd(), here):
        if os.path.isfile(os.path.join(root, "benchmarks", "timing.py")):
            return root
    raise NotFound("the benchmark scripts (benchmarks/) are not installed: run `ruvector bench` "
                   "from a source checkout of ruvector")


def suite_module(name):
    """The imported ``benchmarks.<name>`` module."""
    if "benchmarks" not in sys.modules:
        root = _checkout()
        if root not in sys.path:
            sys.path.insert(0, root)
    return import_module(f"benchmarks.{name}")


def _run(args):
    suite_module(args.suite).main(args.options)


def register(sub):
    lines = "\n".join(f"  {name:15} {text}" for name, text in SUITES.items())
    bench = sub.add_parser("bench", help="run a benchmark suite (from a source checkout)",
                           formatter_class=argparse.RawDescriptionHelpFormatter,
                           description=f"suites:\n{lines}\n\n`ruvector bench SUITE --help` lists "
                                       "a suite's options; --json prints the raw result")
    bench.add_argument("suite", choices=list(SUITES), metavar="SUITE", help="one of the suites above")
    bench.add_argument("options", nargs=argparse.REMAINDER, help="the suite's own options")
    bench.set_defaults(func=_run)
