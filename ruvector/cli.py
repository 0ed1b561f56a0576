"""Command line: ``ruvector ...`` and ``python -m ruvector ...``."""
import argparse
import json
import sys

from . import __version__
from .errors import RuvectorError


def _bench_attention(args):
    from .benchmarks.attention import run
    result = run(quick=args.quick)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"dense attention, {result['threads']} threads (torch: {result['torch']})")
    print(f"{'shape':22} {'fwd ms':>9} {'GFLOP/s':>8} {'bwd ms':>9} {'bwd/fwd':>8} "
          f"{'numpy ms':>9} {'torch ms':>9} {'vs torch':>8}")
    for name, row in result["results"].items():
        f, b = row["ruvector_forward"], row["ruvector_backward"]
        numpy_ms = row.get("numpy_forward", {}).get("ms", float("nan"))
        torch_ms = row.get("torch_forward", {}).get("ms", float("nan"))
        print(f"{name:22} {f['ms']:9.3f} {f['gflops']:8.1f} {b['ms']:9.3f} "
              f"{row['backward_over_forward']:8.2f} {numpy_ms:9.3f} {torch_ms:9.3f} "
              f"{row.get('forward_speedup_vs_torch', float('nan')):7.2f}x")


def build_parser():
    parser = argparse.ArgumentParser(prog="ruvector", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"ruvector {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="run a benchmark suite")
    bench_sub = bench.add_subparsers(dest="suite", required=True)
    att = bench_sub.add_parser("attention", help="dense attention kernels vs NumPy / PyTorch")
    att.add_argument("--json", action="store_true", help="print the raw JSON result")
    att.add_argument("--quick", action="store_true", help="short run on the smaller shapes")
    att.set_defaults(func=_bench_attention)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except RuvectorError as exc:
        print(f"ruvector: error: {exc}", file=sys.stderr)
        return 2
    return 0
