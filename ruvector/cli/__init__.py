"""ruvector command line (also python -m ruvector): stores, benchmarks, export, pictures, tests."""
import argparse
import sys

from .. import __version__
from ..errors import RuvectorError
from . import bench, evaluation, export, graph, index, selftest, visualize, warmup


def _demo(args):
    from .demo import run_demo, run_graph_demo
    run_demo()
    run_graph_demo()


def build_parser():
    parser = argparse.ArgumentParser(prog="ruvector", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ruvector {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    bench.register(sub)
    index.register(sub)
    graph.register(sub)
    warmup.register(sub)
    export.register(sub)
    visualize.register(sub)
    selftest.register(sub)
    evaluation.register(sub)
    demo = sub.add_parser("demo", help="vector store and graph query demo on built-in data")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except RuvectorError as exc:
        print(f"ruvector: error: {exc}", file=sys.stderr)
        return 2
    return code or 0
