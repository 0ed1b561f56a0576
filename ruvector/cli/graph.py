"""``ruvector graph import | info | query``."""
import json
import sys

from .._persist import write_file_atomic
from ..errors import InvalidInput, StorageError


def parse_vector(value, what):
    """An embedding from a table cell or a GraphML attribute: a list of numbers, or text
    holding a JSON list or numbers separated by spaces or commas."""
    if value is None or not isinstance(value, str):
        return value
    text = value.strip()
    try:
        parsed = json.loads(text) if text.startswith("[") else \
            [float(t) for t in text.replace(",", " ").split()]
    except ValueError:
        raise InvalidInput(f"{what}: cannot read a vector from {value[:60]!r}") from None
    return parsed


def _import(args):
    from .._arrow import load_matrix, read_table
    from ..graph import GraphStore
    paths, column = args.paths, args.embedding_column
    extra = None if args.embeddings is None else load_matrix(args.embeddings)
    if len(paths) == 2 and paths[0].lower().endswith(".graphml"):
        import networkx as nx
        try:
            G = nx.read_graphml(paths[0])
        except (OSError, ValueError, SyntaxError) as exc:
            raise StorageError(f"cannot read {paths[0]}: {exc}") from None
        present = any(column in data for _, data in G.nodes(data=True))
        vectors = _rows_of(extra, G.number_of_nodes(), args.embeddings, column, present)
        for i, (key, data) in enumerate(G.nodes(data=True)):
            if vectors is not None:
                data[column] = vectors[i]
            elif column in data:
                data[column] = parse_vector(data[column], f"node {key!r} {column}")
        store = GraphStore.from_networkx(G, embedding_attr=column)
    elif len(paths) == 3:
        nodes = read_table(paths[0])
        has = column in nodes.column_names
        vectors = [parse_vector(v, f"row {i} of {column!r}")
                   for i, v in enumerate(nodes.column(column).to_pylist())] if has else None
        vectors = _rows_of(extra, nodes.num_rows, args.embeddings, column, has) or vectors
        if vectors is not None:
            nodes = (nodes.drop_columns([column]) if has else nodes).append_column(
                column, [vectors])
        store = GraphStore.from_arrow(nodes, read_table(paths[1]),
                                      key_column=args.key_column, embedding_column=column,
                                      source_column=args.source_column,
                                      target_column=args.target_column,
                                      directed=not args.undirected)
    else:
        raise InvalidInput("graph import takes NODES EDGES OUT_DIR (Parquet, Arrow or CSV) or "
                           "GRAPH.graphml OUT_DIR")
    store.save(paths[-1])
    if not args.quiet:
        print(f"imported {store.num_nodes} nodes and {store.num_edges} edges into {paths[-1]}")


def _rows_of(extra, n, path, column, present):
    """The rows of the --embeddings array for n nodes (None without one)."""
    if extra is None:
        return None
    if present:
        raise InvalidInput(f"the nodes already have a {column!r} attribute; drop "
                           f"--embeddings {path} or rename it with --embedding-column")
    if extra.shape[0] != n:
        raise InvalidInput(f"{path} has {extra.shape[0]} rows for {n} nodes")
    return [row.tolist() for row in extra]


def _info(args):
    from ..graph import GraphStore
    print(json.dumps(GraphStore.info(args.dir), indent=2))


def parse_param(text):
    """``name=value``: value as JSON when it parses, else a string; ``@file.npy`` or
    ``@file.json`` loads a file."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise InvalidInput(f"--param needs name=value, got {text!r}")
    if raw.startswith("@"):
        path = raw[1:]
        try:
            if path.lower().endswith(".npy"):
                import numpy as np
                return name, np.load(path, allow_pickle=False)
            with open(path) as fh:
                return name, json.load(fh)
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read parameter file {path}: {exc}") from None
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def _query(args):
    from ..graph import GraphStore
    store = GraphStore.load(args.dir)
    params = dict(parse_param(p) for p in args.param)
    if args.explain:
        store.explain(args.query, params)
        return
    res = store.query(args.query, params, max_hops=args.max_hops,
                      max_expansions=args.max_expansions, timeout=args.timeout)
    if res.plan is not None and res.columns != ["plan"]:  # PROFILE: the figures per step
        print(res.plan, file=sys.stderr)
    if args.out:
        import pyarrow.parquet as pq
        table = res.to_arrow()
        write_file_atomic(args.out, lambda tmp: pq.write_table(table, tmp))
        print(f"{len(res)} rows -> {args.out}", file=sys.stderr)
    elif args.json:
        print(json.dumps({"columns": res.columns, "rows": [list(r) for r in res.rows],
                          "stats": res.stats}, default=str))
    else:
        print("\t".join(res.columns))
        for row in res.rows:
            print("\t".join(json.dumps(v, default=str) for v in row))
        print(f"({len(res)} rows, {res.stats['ms']} ms)", file=sys.stderr)


def add_query_options(parser):
    """--param and --max-hops, shared by the commands that run a query."""
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="JSON value, plain string, or @file.npy / @file.json")
    parser.add_argument("--max-hops", type=int, default=10,
                        help="hops an unbounded * may take (default 10)")


def register(sub):
    graph = sub.add_parser("graph", help="import, inspect and query graph stores")
    gsub = graph.add_subparsers(dest="action", required=True)
    imp = gsub.add_parser("import", help="NODES EDGES OUT_DIR (Parquet/Arrow/CSV) or "
                                         "GRAPH.graphml OUT_DIR")
    imp.add_argument("paths", nargs="+", metavar="PATH",
                     help="NODES EDGES OUT_DIR, or GRAPH.graphml OUT_DIR")
    imp.add_argument("--key-column", default="key", help="node key column (default key)")
    imp.add_argument("--source-column", default="source",
                     help="edge source column (default source)")
    imp.add_argument("--target-column", default="target",
                     help="edge target column (default target)")
    imp.add_argument("--embedding-column", default="embedding",
                     help="node column (Parquet/Arrow/CSV) or GraphML node attribute holding "
                     "the embedding: a list of floats, or text with a JSON list or numbers "
                     "separated by spaces or commas (default embedding)")
    imp.add_argument("--embeddings", metavar="FILE.npy",
                     help="node embeddings as an (N, D) .npy array, row i for the i-th node "
                     "of the node table or GraphML file (e.g. for CSV input)")
    imp.add_argument("--undirected", action="store_true", help="store the edges both ways")
    imp.add_argument("--quiet", action="store_true", help="no summary line")
    imp.set_defaults(func=_import)
    info = gsub.add_parser("info", help="print a graph store's summary as JSON")
    info.add_argument("dir", help="graph store directory")
    info.set_defaults(func=_info)
    query = gsub.add_parser("query", help="run a MATCH ... RETURN query")
    query.add_argument("dir", help="graph store directory")
    query.add_argument("query", help="the query text, e.g. 'MATCH (a)-->(b) RETURN b.key'")
    add_query_options(query)
    query.add_argument("--max-expansions", type=int, default=1_000_000,
                       help="edges scanned plus cartesian rows before the query is "
                       "stopped (default 1,000,000)")
    query.add_argument("--timeout", type=float, default=None,
                       help="seconds before the query is stopped (default none)")
    query.add_argument("--explain", action="store_true", help="print the plan only")
    fmt = query.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the rows as JSON")
    fmt.add_argument("--out", help="write the rows to a Parquet file")
    query.set_defaults(func=_query)
