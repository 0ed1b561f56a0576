"""``ruvector warmup``: compile the Numba kernels into the on-disk cache ahead of first use
(e.g. in a Docker build step), by running each suite's work once on tiny inputs."""
import json
import sys
import time

import numpy as np


def _attention():
    import ruvector as rv
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 2, 40, 16)).astype(np.float32) for _ in range(3))
    for causal in (False, True):
        attn = rv.ScaledDotProductAttention(causal=causal)
        out = attn.forward(q, k, v)
        attn.backward(np.ones_like(out))
    rv.scaled_dot_product_attention(q[0, 0, 0], k[0, 0], v[0, 0])
    rv.scaled_dot_product_attention(q, k, v, mask=np.tril(np.ones((40, 40), bool)),
                                    need_weights=True)
    mha = rv.MultiHeadAttention(16, 2, seed=0)
    y = mha.forward(q[0], k[0], v[0])
    mha.backward(np.ones_like(y))


def _sparse():
    from ruvector.attention.sparse import BlockSparseMask, COOMask, SparseAttention
    q = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    sa = SparseAttention()
    for run in (lambda: sa.forward_windowed(q, q, q, 4, global_tokens=(0,)),
                lambda: sa.forward_strided(q, q, q, 4, 8),
                lambda: sa.forward_block_sparse(q, q, q, BlockSparseMask(16, [(0, 0), (1, 0)])),
                lambda: sa.forward_block_sparse(q, q, q, BlockSparseMask(4, [(0, 0), (3, 1)])),
                lambda: sa.forward_sparse(q, q, q, COOMask([0, 5], [1, 2], (64, 64))),
                lambda: sa.forward_topk(q, q, q, 4)):
        sa.backward(np.ones_like(run()))


def _geometric():
    from ruvector.attention.geometric import (HyperbolicAttention, MixedCurvatureAttention,
                                              SphericalAttention)
    rng = np.random.default_rng(0)
    q, keys = 0.1 * rng.standard_normal(8), 0.1 * rng.standard_normal((6, 8))
    for agg in ("tangent", "einstein", "frechet"):
        att = HyperbolicAttention(8, aggregation=agg)
        out = att.forward(q, keys, keys)
        if agg != "frechet":
            att.backward(np.ones_like(out))
    SphericalAttention(8).forward(q, keys, keys)
    MixedCurvatureAttention([("euclidean", 4), ("hyperbolic", 4, 1.0)]).forward(q, keys, keys)


def _graph():
    import ruvector as rv
    from ruvector.gnn import AttentionGNNLayer, subgraph_embedding
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 8)).astype(np.float32)
    edges = rng.integers(0, 30, (2, 90))
    layers = [rv.GATLayer(8, 4, heads=2), rv.GINLayer(8, 16, 4), rv.SAGELayer(8, 4),
              rv.SAGELayer(8, 4, aggr="max"), rv.SAGELayer(8, 4, aggr="sum"),
              AttentionGNNLayer(8, 2)]
    for layer in layers:
        layer.backward(np.ones_like(layer.forward(x, edges)))
    rv.GATLayer(8, 8).forward_k_hop(0, x, edges, 2)
    subgraph_embedding(x, [0, 1, 2])


def _index():
    from ruvector.index import AttentionReranker, VectorStore
    rng = np.random.default_rng(0)
    for metric in ("l2", "cosine", "ip"):
        store = VectorStore(8, metric)
        store.add(rng.standard_normal((200, 8)), metadata=[{"g": i % 4} for i in range(200)])
        q = rng.standard_normal((3, 8))
        for rerank in (None, "attention", "exact", AttentionReranker(diversity=0.5)):
            store.search(q, 5, rerank=rerank)
        store.search(q, 5, filter={"g": 1})


def _query():
    import networkx as nx
    from ruvector.graph import GraphStore
    G = nx.karate_club_graph()
    for n in G:
        G.nodes[n]["embedding"] = np.full(4, float(n))
    g = GraphStore.from_networkx(G)
    g.query("MATCH (a {key: 0})-->(b)-[*1..2]-(c) ATTEND BY $q TOP 3 RETURN c, score()",
            {"q": [1.0, 0, 0, 0]})
    g.query("MATCH (a)-->(b) WHERE a.club = 'Mr. Hi' RETURN b.key, count(*) LIMIT 3")


SUITES = {"attention": _attention, "sparse": _sparse, "geometric": _geometric,
          "graph": _graph, "index": _index, "query": _query}


def run(suites, out=sys.stdout):
    """Run the chosen suites; returns {suite: seconds} (mostly compile time when cold)."""
    timings = {}
    for name in suites:
        t0 = time.perf_counter()
        SUITES[name]()
        timings[name] = round(time.perf_counter() - t0, 2)
        print(f"warmup {name}: {timings[name]:.1f} s", file=out, flush=True)
    return timings


def register(sub):
    p = sub.add_parser("warmup", help="compile the Numba kernels into the cache ahead of use",
                       description="Compile every kernel a suite uses into Numba's on-disk "
                       "cache (NUMBA_CACHE_DIR moves it), so that first calls do not pause.")
    p.add_argument("--suite", choices=["all", *SUITES], default="all",
                   help="which kernels to compile (default: all)")
    p.add_argument("--json", action="store_true", help="print the seconds per suite as JSON")
    p.set_defaults(func=_main)


def _main(args):
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    timings = run(suites, out=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(timings))
