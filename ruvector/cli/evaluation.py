"""``ruvector eval``: recall@k, nDCG@10 and MRR of plain search and each re-ranker."""
import json

from ..errors import InvalidInput


def _eval(args):
    from .._arrow import read_vectors
    from ..eval import METHODS, digits, evaluate, load_qrels
    if args.dataset:
        if args.paths:
            raise InvalidInput("give CORPUS QUERIES QRELS or --dataset, not both")
        corpus, queries, qrels = digits(seed=args.seed)
    elif len(args.paths) == 3:
        corpus, _ = read_vectors(args.paths[0], args.vector_column)
        queries, _ = read_vectors(args.paths[1], args.vector_column)
        qrels = load_qrels(args.paths[2], len(queries))
    else:
        raise InvalidInput("eval takes CORPUS QUERIES QRELS (or --dataset digits)")
    methods = METHODS if args.methods is None else [m.strip() for m in args.methods.split(",")]
    report = evaluate(corpus, queries, qrels, methods=methods, metric=args.metric, k=args.k,
                      candidates=args.candidates, test_share=args.test_share, seed=args.seed)
    print(json.dumps(report.to_dict()) if args.json else report.table())


def register(sub):
    p = sub.add_parser("eval", help="retrieval quality of plain search and the re-rankers on "
                                    "judged queries")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="CORPUS QUERIES QRELS: vectors as .npy or a table with a vector "
                   "column (corpus ids are row numbers), judgements as JSON "
                   "{query row: {id: gain}} or 'query [0] id gain' lines")
    p.add_argument("--dataset", choices=("digits",),
                   help="a bundled judged set instead (digits: needs ruvector[eval])")
    p.add_argument("--vector-column", default="vector", help="table column of the vectors")
    p.add_argument("--metric", choices=("cosine", "l2", "ip"), default="cosine",
                   help="the store's metric (default cosine)")
    p.add_argument("-k", type=int, default=10, help="recall@k (default 10)")
    p.add_argument("--candidates", type=int, default=100,
                   help="HNSW results each re-ranker re-scores (default 100)")
    p.add_argument("--methods", help="comma-separated subset of hnsw,exact,attention,mmr,"
                   "learned (default all)")
    p.add_argument("--test-share", type=float, default=0.5,
                   help="share of the queries held out and scored (default 0.5); the "
                   "others train the learned distance")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the query split, the learned distance and the dataset split")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_eval)
