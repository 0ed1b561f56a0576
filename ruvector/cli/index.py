"""``ruvector index build | query | info``."""
import json


def _index_build(args):
    from .._arrow import read_vectors
    from .._progress import progress
    from ..index import VectorStore
    vectors, table = read_vectors(args.input, args.vector_column)
    ids = None
    meta = None
    if table is not None:
        if args.id_column in table.column_names:
            ids = table.column(args.id_column).to_numpy()
        cols = [c for c in table.column_names if c not in (args.vector_column, args.id_column)]
        meta = table.select(cols) if cols else None
    store = VectorStore(vectors.shape[1], args.metric, M=args.M,
                        ef_construction=args.ef_construction, capacity=max(len(vectors), 1))
    chunk = 10_000
    with progress(total=len(vectors), desc="indexing", enabled=not args.quiet, unit="vec") as bar:
        for start in range(0, len(vectors), chunk):
            stop = min(start + chunk, len(vectors))
            store.add(vectors[start:stop], None if ids is None else ids[start:stop],
                      None if meta is None else meta.slice(start, stop - start))
            bar.update(stop - start)
    store.save(args.out_dir)
    if not args.quiet:
        print(f"indexed {len(store)} vectors of dim {store.dim} ({store.metric}) "
              f"into {args.out_dir}")


def _index_query(args):
    from .._arrow import read_vectors
    from ..index import AttentionReranker, VectorStore
    store = VectorStore.load(args.store)
    queries, _ = read_vectors(args.queries, args.vector_column)
    rerank = AttentionReranker(args.rerank) if args.rerank else None
    res = store.search(queries, args.k, ef=args.ef, rerank=rerank, candidates=args.candidates)
    if args.out:
        import pyarrow.parquet as pq
        pq.write_table(res.to_arrow(), args.out)
    elif args.json:
        print(json.dumps({"ids": res.ids.tolist(),
                          "distances": [[float(d) for d in row] for row in res.distances],
                          "scores": res.scores.tolist()}))
    else:
        for i, (row, drow) in enumerate(zip(res.ids, res.distances)):
            pairs = " ".join(f"{int(j)}({d:.4g})" for j, d in zip(row, drow) if j >= 0)
            print(f"q{i}: {pairs}")


def _index_info(args):
    from ..index import VectorStore
    print(json.dumps(VectorStore.info(args.store), indent=2))


def register(sub):
    index = sub.add_parser("index", help="build, query and inspect vector stores")
    isub = index.add_subparsers(dest="action", required=True)
    build = isub.add_parser("build", help="build a store from Parquet, Arrow or .npy")
    build.add_argument("input", help="vectors: .parquet, .arrow / .feather or .npy")
    build.add_argument("out_dir", help="directory of the new store")
    build.add_argument("--metric", default="cosine", choices=["cosine", "l2", "ip"],
                       help="distance (default cosine)")
    build.add_argument("--vector-column", default="vector",
                       help="column of fixed-size float lists (default vector)")
    build.add_argument("--id-column", default="id",
                       help="integer id column, if present (default id); other columns "
                       "become metadata")
    build.add_argument("--M", type=int, default=16, help="HNSW links per node (default 16)")
    build.add_argument("--ef-construction", type=int, default=200,
                       help="HNSW build breadth (default 200)")
    build.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    build.set_defaults(func=_index_build)
    query = isub.add_parser("query", help="query a store with vectors from a file")
    query.add_argument("store", help="store directory")
    query.add_argument("queries", help="query vectors: .parquet, .arrow / .feather or .npy")
    query.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    query.add_argument("--ef", type=int, default=None,
                       help="HNSW search breadth (default: the store's ef_search)")
    query.add_argument("--rerank", choices=["attention", "exact"], default=None,
                       help="re-score the HNSW candidates")
    query.add_argument("--candidates", type=int, default=None,
                       help="candidates re-ranked per query (default 10 k)")
    query.add_argument("--vector-column", default="vector",
                       help="column of the query vectors (default vector)")
    fmt = query.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print ids/distances/scores as JSON")
    fmt.add_argument("--out", help="write results to a Parquet file")
    query.set_defaults(func=_index_query)
    info = isub.add_parser("info", help="print a store's manifest summary")
    info.add_argument("store", help="store directory")
    info.set_defaults(func=_index_info)
