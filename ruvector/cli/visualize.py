"""``ruvector visualize attention | graph | training``: pictures as PNG, SVG or PDF."""
import numpy as np

from ..errors import InvalidInput, StorageError
from .graph import add_query_options, parse_param

ATTENTION_ARRAYS = ("weights", "query", "key", "mask")


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {path}: {exc}") from None
    unknown = sorted(set(arrays) - set(ATTENTION_ARRAYS))
    if unknown:
        raise InvalidInput(f"{path} holds {unknown}; expected weights, or query and key "
                           "(and optionally mask)")
    return arrays


def _attention(args):
    from ..viz import attention_heatmap, attention_weights
    _check_options(args)
    arrays = _load_npz(args.input)
    mask = arrays.get("mask")
    if "weights" in arrays:
        weights = arrays["weights"]
    elif "query" in arrays and "key" in arrays:
        module = None
        if args.checkpoint:
            from ..training import load_checkpoint
            module = load_checkpoint(args.checkpoint).module
        weights, mask = attention_weights(
            args.type, arrays["query"], arrays["key"], mask=mask, heads=args.heads,
            module=module, causal=args.causal, curvature=args.curvature,
            temperature=args.temperature, window=args.window, stride=args.stride,
            top_k=args.top_k)
    else:
        raise InvalidInput(f"{args.input} needs a weights array, or query and key arrays")
    fig = attention_heatmap(weights, mask=mask, title=args.title or f"{args.type} attention")
    _save(fig, args)


# The --type each option belongs to: given with another type it would be ignored.
TYPE_OPTIONS = {"heads": "multihead", "checkpoint": "multihead", "window": "sparse",
                "stride": "sparse", "top_k": "sparse"}


def _check_options(args):
    for name, kind in TYPE_OPTIONS.items():
        if getattr(args, name) is not None and args.type != kind:
            raise InvalidInput(f"--{name.replace('_', '-')} applies to --type {kind}, "
                               f"not {args.type}")


def _graph(args):
    from ..graph import GraphStore
    from ..viz import traversal
    store = GraphStore.load(args.store)
    params = dict(parse_param(p) for p in args.param)
    fig = traversal(store, args.query, params, title=args.title, max_context=args.max_context,
                    max_hops=args.max_hops)
    _save(fig, args)


def _training(args):
    from ..viz import training_curves
    _save(training_curves(args.history, title=args.title or "training"), args)


def _save(fig, args):
    from ..viz import save_figure
    print(f"wrote {save_figure(fig, args.out, args.format)}")


def register(sub):
    vis = sub.add_parser("visualize", help="draw attention weights, a graph traversal or "
                                           "training curves (needs ruvector[viz])")
    vsub = vis.add_subparsers(dest="picture", required=True)
    att = vsub.add_parser("attention", help="INPUT.npz OUT: heat map of attention weights "
                                            "per head")
    att.add_argument("input", help=".npz with 'weights' (Lq, Lk) or (H, Lq, Lk), or 'query' "
                     "and 'key' to compute them; optional boolean 'mask' (True = may attend)")
    att.add_argument("--type", choices=("standard", "multihead", "hyperbolic", "sparse"),
                     default="standard", help="the mechanism giving the weights "
                     "(default standard)")
    att.add_argument("--heads", type=int, help="multihead without --checkpoint: split the "
                     "width into this many heads (identity projections)")
    att.add_argument("--checkpoint", help="multihead: a checkpoint of a MultiHeadAttention "
                     "whose projections give the per-head weights")
    att.add_argument("--causal", action="store_true", help="standard / multihead / sparse: "
                     "queries see earlier keys only")
    att.add_argument("--curvature", type=float, default=1.0,
                     help="hyperbolic: the ball's curvature c (default 1)")
    att.add_argument("--temperature", type=float, default=1.0,
                     help="hyperbolic: softmax temperature (default 1)")
    att.add_argument("--window", type=int, help="sparse: band half-width")
    att.add_argument("--stride", type=int, help="sparse: with --window, also every stride-th key")
    att.add_argument("--top-k", type=int, help="sparse: each query keeps its k best keys")
    graph = vsub.add_parser("graph", help='STORE "MATCH ... ATTEND BY ... RETURN ..." OUT: '
                                          "the traversal")
    graph.add_argument("store", help="graph store directory")
    graph.add_argument("query", help="a MATCH ... ATTEND BY ... RETURN query")
    add_query_options(graph)
    graph.add_argument("--max-context", type=int, default=100,
                       help="neighbours not taken drawn in grey (default 100)")
    train = vsub.add_parser("training", help="HISTORY.json OUT: loss curves")
    train.add_argument("history", help="JSON: a list of losses, or {name: [losses], "
                       "best_epoch: i} (FitHistory.save writes one)")
    for p, func in ((att, _attention), (graph, _graph), (train, _training)):
        p.add_argument("out", help="output image (.png, .svg or .pdf)")
        p.add_argument("--format", choices=("png", "svg", "pdf"),
                       help="image format (default: from OUT's suffix, else png)")
        p.add_argument("--title", help="the picture's title")
        p.set_defaults(func=func)
