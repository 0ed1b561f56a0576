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


def _bench_index(args):
    from .benchmarks.index import run
    result = run(n=args.n, queries=args.queries)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    b = result["build_seconds"]
    print(f"vector index, {result['n']} x {result['dim']}, {result['queries']} queries, "
          f"{result['threads']} threads; build {b['ruvector']} s (hnswlib {b['hnswlib']} s)")
    for ef, row in result["results"]["search"].items():
        print(f"  {ef:6} recall {row['ruvector_recall']:.3f}  {row['ruvector_qps']:>7} QPS  "
              f"(hnswlib {row['hnswlib_qps']:>7} QPS, ratio {row['qps_ratio']})")
    r = result["results"]["rerank"]
    print(f"  search + attention re-rank ({r['candidates']} candidates): {r['ruvector_qps']} QPS, "
          f"NumPy pipeline {r['numpy_pipeline_qps']} QPS ({r['speedup']}x), re-rank adds "
          f"{100 * r['rerank_overhead']:.0f}% to the search")


def _bench_graph(args):
    from .benchmarks.graph import run
    result = run()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"graph layers, degree {result['degree']}, {result['features']} features, "
          f"{result['threads']} threads (PyG: {result['pyg']})")
    for name, row in result["results"].items():
        pyg = row.get("pyg", {})
        best = min((v["forward_ms"] for v in pyg.values()), default=float("nan"))
        print(f"  {name:22} fwd {row['forward']['ms']:8.3f} ms  bwd {row['backward']['ms']:8.3f} ms"
              f"  PyG best fwd {best:8.3f} ms")


def _bench_sparse(args):
    from .benchmarks.sparse import run
    result = run(lengths=(1024,) if args.quick else (4096, 16384))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for L, row in result["patterns"].items():
        for name, r in row.items():
            print(f"{L:7} {name:9} fwd {r['forward_ms']:9.2f} ms ({r['forward_speedup']}x dense, "
                  f"{r['gflops_per_useful_pair']} GFLOP/s per pair)  bwd {r['backward_ms']:9.2f} ms "
                  f"({r['backward_speedup']}x dense)")
    t, h = result["topk"], result["hyperbolic"]
    print(f"top-{t['k']} over {t['keys']:,} keys: {t['ms']} ms (NumPy pipeline {t['numpy_ms']} ms)")
    print(f"hyperbolic 1 x {h['keys']} x {h['dim']}: tangent {h['tangent']['us']} us, "
          f"einstein {h['einstein']['us']} us, frechet {h['frechet_us']} us")


def _bench_query(args):
    from .benchmarks.query import run
    result = run(grand_cypher=not args.no_grand_cypher)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    a, f = result["attend_3hop"], result["filter_2hop"]
    print(f"3-hop ATTEND TOP 10, {a['nodes']:,} nodes x out-degree {a['out_degree']}: "
          f"median {a['median_ms']} ms (p90 {a['p90_ms']} ms, cold {a['cold_ms']} ms), "
          f"{a['rows']} rows")
    gc = f.get("grand_cypher_ms", f.get("grand_cypher", "skipped"))
    print(f"2-hop + WHERE, {f['nodes']:,} nodes: {f['ruvector_ms']} ms, grand-cypher {gc} ms"
          + (f" ({f['speedup']}x, same rows: {f['same_rows']})" if "speedup" in f else ""))


def _index_build(args):
    from .index import VectorStore
    from .index.io import read_vectors
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
    from ._progress import progress
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
    import numpy as np
    import pyarrow as pa
    from .index import AttentionReranker, VectorStore
    from .index.io import read_vectors
    store = VectorStore.load(args.store)
    queries, _ = read_vectors(args.queries, args.vector_column)
    rerank = AttentionReranker(args.rerank) if args.rerank else None
    res = store.search(queries, args.k, ef=args.ef, rerank=rerank, candidates=args.candidates)
    if args.out:
        import pyarrow.parquet as pq
        Q, k = res.ids.shape
        cols = {"query": np.repeat(np.arange(Q), k), "rank": np.tile(np.arange(k), Q),
                "id": res.ids.ravel(), "distance": res.distances.ravel()}
        if res.scores is not None:
            cols["score"] = res.scores.ravel()
        pq.write_table(pa.table(cols), args.out)
    elif args.json:
        print(json.dumps({"ids": res.ids.tolist(),
                          "distances": [[float(d) for d in row] for row in res.distances],
                          "scores": None if res.scores is None else res.scores.tolist()}))
    else:
        for i, (row, drow) in enumerate(zip(res.ids, res.distances)):
            pairs = " ".join(f"{int(j)}({d:.4g})" for j, d in zip(row, drow) if j >= 0)
            print(f"q{i}: {pairs}")


def _index_info(args):
    from ._persist import read_generation
    from .index.store import FORMAT, FORMAT_VERSION
    manifest, _ = read_generation(args.store, FORMAT, FORMAT_VERSION)
    info = {k: manifest[k] for k in ("format", "version", "generation", "dim", "metric", "count",
                                     "slots", "M", "ef_construction", "ef_search")}
    info["bytes"] = sum(f["bytes"] for f in manifest["files"].values())
    print(json.dumps(info, indent=2))


def _demo(args):
    from .demo import run_demo, run_graph_demo
    run_demo()
    run_graph_demo()


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
    idx = bench_sub.add_parser("index", help="VectorStore vs raw hnswlib; re-rank vs NumPy")
    idx.add_argument("--json", action="store_true", help="print the raw JSON result")
    idx.add_argument("--n", type=int, default=100_000, help="vectors (default 100,000)")
    idx.add_argument("--queries", type=int, default=1_000)
    idx.set_defaults(func=_bench_index)
    gr = bench_sub.add_parser("graph", help="GAT / GIN / SAGE vs PyTorch Geometric")
    gr.add_argument("--json", action="store_true", help="print the raw JSON result")
    gr.set_defaults(func=_bench_graph)
    bs = bench_sub.add_parser("sparse", help="sparse / top-k / hyperbolic attention vs dense")
    bs.add_argument("--json", action="store_true", help="print the raw JSON result")
    bs.add_argument("--quick", action="store_true", help="L = 1,024 only")
    bs.set_defaults(func=_bench_sparse)
    bq = bench_sub.add_parser("query", help="graph queries: ATTEND latency, 2-hop vs grand-cypher")
    bq.add_argument("--json", action="store_true", help="print the raw JSON result")
    bq.add_argument("--no-grand-cypher", action="store_true", help="skip the slow baseline")
    bq.set_defaults(func=_bench_query)

    index = sub.add_parser("index", help="build, query and inspect vector stores")
    isub = index.add_subparsers(dest="action", required=True)
    build = isub.add_parser("build", help="build a store from Parquet, Arrow or .npy")
    build.add_argument("input")
    build.add_argument("out_dir")
    build.add_argument("--metric", default="cosine", choices=["cosine", "l2", "ip"])
    build.add_argument("--vector-column", default="vector")
    build.add_argument("--id-column", default="id")
    build.add_argument("--M", type=int, default=16)
    build.add_argument("--ef-construction", type=int, default=200)
    build.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    build.set_defaults(func=_index_build)
    query = isub.add_parser("query", help="query a store with vectors from a file")
    query.add_argument("store")
    query.add_argument("queries")
    query.add_argument("-k", type=int, default=10)
    query.add_argument("--ef", type=int, default=None)
    query.add_argument("--rerank", choices=["attention", "exact"], default=None)
    query.add_argument("--candidates", type=int, default=None)
    query.add_argument("--vector-column", default="vector")
    fmt = query.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print ids/distances/scores as JSON")
    fmt.add_argument("--out", help="write results to a Parquet file")
    query.set_defaults(func=_index_query)
    info = isub.add_parser("info", help="print a store's manifest summary")
    info.add_argument("store")
    info.set_defaults(func=_index_info)

    from .graph.cli import register as register_graph
    register_graph(sub)

    demo = sub.add_parser("demo", help="vector store and graph query demo on built-in data")
    demo.set_defaults(func=_demo)
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
