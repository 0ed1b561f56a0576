"""Graph query benchmark: attention-guided traversal latency and a filtered 2-hop pattern
against grand-cypher on the same NetworkX graph (when installed).

1. ATTEND: a random directed graph with 100,000 nodes, out-degree 16, 64-d embeddings;
   ``MATCH (s {key: $s})-->(a)-->(b)-->(c) ATTEND BY $q TOP 10 RETURN c.key, score()`` from
   50 different start nodes (1,000 rows each); median latency, warm (the CSR view is built
   by the first query after a change, reported separately as ``cold_ms``).
2. Plain 2-hop with WHERE on a 10,000-node graph, out-degree 3:
   ``MATCH (a)-->(b)-->(c) WHERE a.age > 98 AND c.age < 2 RETURN a.uid, c.uid`` — ruvector's median
   against one grand-cypher run (it takes about a minute), rows compared.
"""
import time

import numpy as np

from ruvector.graph import GraphStore
from .timing import command, median_seconds

ATTEND_QUERY = "MATCH (s {key: $s})-->(a)-->(b)-->(c) ATTEND BY $q TOP 10 RETURN c.key, score()"
FILTER_QUERY = "MATCH (a)-->(b)-->(c) WHERE a.age > 98 AND c.age < 2 RETURN a.uid, c.uid"


def random_store(n, degree, dim=None, seed=0):
    rng = np.random.default_rng(seed)
    g = GraphStore(dim)
    emb = None if dim is None else rng.standard_normal((n, dim), dtype=np.float32)
    ages = rng.integers(0, 100, n).tolist()
    g.add_nodes(range(n), embeddings=emb,
                properties=[{"age": a, "uid": i} for i, a in enumerate(ages)])
    src = np.repeat(np.arange(n), degree)
    dst = rng.integers(0, n, n * degree)
    g.add_edges(np.stack([src, dst], 1).tolist())
    return g


def bench_attend(n=100_000, degree=16, dim=64, starts=50, seed=0):
    g = random_store(n, degree, dim, seed)
    q = np.random.default_rng(seed + 1).standard_normal(dim)
    t0 = time.perf_counter()
    first = g.query(ATTEND_QUERY, {"s": 0, "q": q})
    cold = time.perf_counter() - t0
    times, rows = [], 0
    for s in range(starts):
        t0 = time.perf_counter()
        res = g.query(ATTEND_QUERY, {"s": s, "q": q})
        times.append(time.perf_counter() - t0)
        rows = len(res)
    return {"nodes": n, "out_degree": degree, "dim": dim, "query": ATTEND_QUERY,
            "median_ms": round(1e3 * float(np.median(times)), 3),
            "p90_ms": round(1e3 * float(np.percentile(times, 90)), 3),
            "cold_ms": round(1e3 * cold, 1), "rows": rows, "stats": first.stats}


def bench_filter(n=10_000, degree=3, seed=0, grand_cypher=True):
    g = random_store(n, degree, None, seed)
    sec = median_seconds(lambda: g.query(FILTER_QUERY), budget=1.0)
    res = g.query(FILTER_QUERY)
    out = {"nodes": n, "out_degree": degree, "query": FILTER_QUERY,
           "ruvector_ms": round(1e3 * sec, 3), "rows": len(res)}
    try:
        from grandcypher import GrandCypher
    except ImportError:
        out["grand_cypher"] = "not installed"
        return out
    if not grand_cypher:
        return out
    G = g.to_networkx()
    t0 = time.perf_counter()
    gc = GrandCypher(G).run(FILTER_QUERY)
    gc_sec = time.perf_counter() - t0
    gc_rows = sorted(zip(gc["a.uid"], gc["c.uid"])) if gc else []
    out.update(grand_cypher_ms=round(1e3 * gc_sec, 1), grand_cypher_rows=len(gc_rows),
               speedup=round(gc_sec / sec, 1),
               same_rows=sorted(res.rows) == gc_rows)
    return out


def run(grand_cypher=True):
    return {"attend_3hop": bench_attend(), "filter_2hop": bench_filter(grand_cypher=grand_cypher)}


def report(result):
    """The result as a table."""
    a, f = result["attend_3hop"], result["filter_2hop"]
    print(f"3-hop ATTEND TOP 10, {a['nodes']:,} nodes x out-degree {a['out_degree']}: "
          f"median {a['median_ms']} ms (p90 {a['p90_ms']} ms, cold {a['cold_ms']} ms), "
          f"{a['rows']} rows")
    gc = f.get("grand_cypher_ms", f.get("grand_cypher", "skipped"))
    print(f"2-hop + WHERE, {f['nodes']:,} nodes: {f['ruvector_ms']} ms, grand-cypher {gc} ms"
          + (f" ({f['speedup']}x, same rows: {f['same_rows']})" if "speedup" in f else ""))


def _options(parser):
    parser.add_argument("--no-grand-cypher", action="store_true",
                        help="skip the (slow) grand-cypher baseline")


def main(argv=None):
    return command(argv, __doc__, lambda a: run(grand_cypher=not a.no_grand_cypher), report, _options)


if __name__ == "__main__":
    main()
