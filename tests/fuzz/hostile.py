"""Hostile values and the public entry points they are fed to.

Run as ``python -m tests.fuzz.hostile SUITE EXAMPLES SEED LOG``: a hypothesis run over one
suite ("api" or "query") in this process, so that the pytest process survives a native
crash.  Every call must return a correct result or raise a RuvectorError; anything else is
a failure.  The case about to run is written to LOG first, so a crash or a hang (> 5 s,
Numba compile time excluded; stopped by faulthandler after WATCHDOG_SECONDS) names its
case.  On success one JSON line gives, per entry point, the cases
tried, those answered and those refused with a typed error.
"""
import contextlib
import faulthandler
import io
import json
import os
import sys
import tempfile
import time
from collections import Counter

import networkx as nx
import numba.core.event as numba_event
import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, seed as hypothesis_seed, settings, strategies as st

import ruvector as rv
from ruvector.attention import scaled_dot_product_attention
from ruvector.attention.sparse import BlockSparseMask, COOMask, WindowedMask
from ruvector.errors import RuvectorError
from ruvector.graph import GraphStore
from ruvector.gnn import subgraph_embedding

HANG_SECONDS = 5        # a case slower than this, compile time excluded, is a hang
WATCHDOG_SECONDS = 120  # a case still running after this is stopped (with its traceback)

# -- hostile values -------------------------------------------------------------------------
BAD_INTS = [-2**63 - 1, -2**63, -1, 0, 2**31, 2**32 + 1, 2**63, 2**64, 10**20, 2**200]
BAD_FLOATS = [float("nan"), float("inf"), -float("inf"), 3e38, -3e38, 1e-45, 1.5, -0.0]
OTHER = [None, True, False, "", "x", "cosine", b"\x00", [], [[]], [1, [2]], {}, {"$gt": None},
         {"lable": 1}, {"$or": 3}, object(), (1, 2, 3), 1 + 2j, float, np.nan]


def arrays(dim):
    """Arrays that look almost right: wrong dtypes, ranks, widths, values."""
    return st.sampled_from([
        np.ones(dim), np.ones((2, dim)), np.ones((0, dim)), np.ones((2, dim + 1)),
        np.ones((2, 1, dim)), np.full((2, dim), np.nan), np.full((2, dim), 3e38),
        np.full((2, dim), 1e19), np.ones((2, dim)) * (1 + 1j), np.array([["a"] * dim]),
        np.array([object()] * dim), np.zeros((2, dim)), np.ones((2, dim), np.int8),
        np.ones((2, dim), bool), np.ones((2, dim), np.float16), [[1.0] * dim, [1.0]],
        np.arange(dim, dtype=np.uint64), np.ones((2, dim))[:, ::2]])


def hostile(dim=4):
    return st.one_of(st.sampled_from(BAD_INTS + BAD_FLOATS + OTHER), arrays(dim),
                     st.integers(-3, 40), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=8), st.lists(st.integers(-2, 2**64), max_size=4))


def _store(metric="l2", n=30, dim=4):
    s = rv.VectorStore(dim, metric)
    s.add(np.random.default_rng(0).standard_normal((n, dim)),
          metadata=[{"label": i % 3, "name": f"n{i}"} for i in range(n)])
    return s


def _graph():
    G = nx.karate_club_graph()
    rng = np.random.default_rng(0)
    for n in G:
        G.nodes[n]["embedding"] = rng.standard_normal(4)
    return GraphStore.from_networkx(G)


def _check_search(store, out):
    ids = np.atleast_2d(out.ids)
    assert ids.shape == np.atleast_2d(out.distances).shape
    live = set(store.ids.tolist()) | {-1}
    assert set(ids.ravel().tolist()) <= live
    d = np.atleast_2d(out.distances)
    scores = np.atleast_2d(out.scores)
    assert np.isfinite(d[ids >= 0]).all() and np.isfinite(scores[ids >= 0]).all()
    assert (d[ids < 0] == np.inf).all() and (scores[ids < 0] == -np.inf).all()


def _check_added(store, vectors, ids):
    stored = store.get(ids)
    assert np.isfinite(stored).all()
    np.testing.assert_array_equal(stored, np.asarray(vectors, np.float32).reshape(stored.shape))


# -- entry points: name -> callable(draw) ------------------------------------------------------
def _vector_store(draw):
    kw = {"dim": 4, "metric": "l2"}
    name = draw(st.sampled_from(["dim", "metric", "M", "ef_construction", "ef_search",
                                 "capacity", "seed"]))
    kw[name] = draw(hostile())
    rv.VectorStore(**kw)


def _add(draw):
    s = _store(draw(st.sampled_from(["l2", "ip", "cosine"])))
    vectors = draw(st.one_of(st.just(np.arange(8.0).reshape(2, 4) + 1), arrays(4), hostile()))
    ids = draw(st.one_of(st.none(), st.just([100, 101]), hostile()))
    meta = draw(st.one_of(st.none(), st.just([{"label": 1}, {"x": "y"}]), hostile()))
    out = s.add(vectors, ids=ids, metadata=meta)
    _check_added(s, vectors, out)


VALID_SEARCH = {"k": st.integers(1, 40), "ef": st.integers(1, 100),
                "filter": st.sampled_from([{"label": 1}, {"label": {"$in": [0, 2]}},
                                           [1, 2, 3], {"$or": [{"label": 0}, {"name": "n3"}]}]),
                "rerank": st.sampled_from(["attention", "exact", None]),
                "candidates": st.integers(40, 60), "include": st.just(["label"])}


def _search(draw):
    s = _store(draw(st.sampled_from(["l2", "ip", "cosine"])))
    kw = {"k": 5}
    for name in draw(st.sets(st.sampled_from(sorted(VALID_SEARCH)), max_size=3)):
        kw[name] = draw(st.one_of(VALID_SEARCH[name], hostile()))
    queries = draw(st.one_of(st.just(np.ones(4)), st.just(np.eye(4)[:3] + 0.5), arrays(4)))
    _check_search(s, s.search(queries, **kw))


def _read(draw):
    s = _store()
    s.delete([3])
    op = draw(st.sampled_from(["get", "delete", "metadata", "upsert", "contains"]))
    value = draw(hostile())
    if op == "get":
        assert s.get(value).shape[1] == 4
    elif op == "delete":
        s.delete(value)
    elif op == "metadata":
        s.metadata(value, columns=draw(st.one_of(st.none(), hostile())))
    elif op == "upsert":
        s.upsert(draw(arrays(4)), value)
    else:
        assert isinstance(value in s, bool)


def _arrow(draw):
    table = draw(st.sampled_from([
        pa.table({"vector": pa.array([[1.0, 2.0], None])}),
        pa.table({"vector": pa.array([], pa.list_(pa.float32()))}),
        pa.table({"vector": pa.array([["a", "b"]])}), pa.table({"vector": pa.array(["ab"])}),
        pa.table({"vector": pa.array([[1.0, float("nan")]])}),
        pa.table({"vector": pa.array([[1.0, 2.0]]), "id": pa.array([-5])}),
        pa.table({"vector": pa.array([[1.0, 2.0]]), "id": pa.array([1.5])}),
        pa.table({"x": [1]})]))
    rv.VectorStore.from_arrow(draw(st.one_of(st.just(table), hostile())))


def _persist(draw):
    s = _store(n=10)
    root = tempfile.mkdtemp()
    target = draw(st.one_of(hostile(), st.sampled_from(
        [root, os.path.join(root, "a", "b"), os.path.join(root, "file"), "/proc/x",
         root + "\x00"])))
    open(os.path.join(root, "file"), "w").close()
    if draw(st.booleans()):
        s.save(target)
        assert len(rv.VectorStore.load(target)) == 10
    else:
        rv.VectorStore.load(target)


def _attention(draw):
    q = draw(st.one_of(arrays(4), st.just(np.ones((3, 4), np.float32))))
    kw = {}
    if draw(st.booleans()):
        kw[draw(st.sampled_from(["mask", "scale", "causal", "max_keys", "need_weights"]))] = \
            draw(hostile(3))
    out = scaled_dot_product_attention(q, np.ones((3, 4)), np.ones((3, 4)), **kw)
    assert all(np.isfinite(o).all() for o in (out if isinstance(out, tuple) else (out,)))


def _modules(draw):
    which = draw(st.sampled_from(["mha", "sdpa", "sparse", "gat", "gin", "sage", "ln"]))
    value = draw(hostile())
    x = np.ones((5, 4), np.float32)
    edges = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    if which == "mha":
        m = rv.MultiHeadAttention(8, 2)
        op = draw(st.sampled_from(["ctor", "forward", "load"]))
        if op == "ctor":
            rv.MultiHeadAttention(value, 2) if draw(st.booleans()) else \
                rv.MultiHeadAttention(8, value)
        elif op == "forward":
            assert np.isfinite(m(value, np.ones((3, 8)), np.ones((3, 8)))).all()
        else:
            m.load_state_dict(value)
    elif which == "sdpa":
        rv.ScaledDotProductAttention(scale=value)
    elif which == "sparse":
        mask = draw(st.sampled_from([
            lambda: WindowedMask(value), lambda: WindowedMask(1, global_tokens=value),
            lambda: BlockSparseMask(value, [(0, 0)]), lambda: BlockSparseMask(2, value),
            lambda: COOMask(value, [0], (4, 4)), lambda: COOMask([0], [0], value)]))()
        out = rv.SparseAttention().forward_sparse(np.ones((4, 4)), np.ones((4, 4)),
                                                  np.ones((4, 4)), mask)
        assert np.isfinite(out).all()
    elif which == "gat":
        layer = rv.GATLayer(4, 3)
        op = draw(st.sampled_from(["slope", "x", "graph", "node"]))
        if op == "slope":
            rv.GATLayer(4, 3, negative_slope=value)
        elif op == "x":
            assert np.isfinite(layer(value, edges)).all()
        elif op == "graph":
            assert np.isfinite(layer(x, value)).all()
        else:
            assert np.isfinite(layer.forward_neighborhood(value, x, edges)).all()
    elif which == "gin":
        layer = rv.GINLayer(4, 8, 3, eps=value) if draw(st.booleans()) else rv.GINLayer(4, 8, 3)
        assert np.isfinite(layer(x if draw(st.booleans()) else value, edges)).all()
    elif which == "sage":
        layer = rv.SAGELayer(4, 3, aggr=value) if draw(st.booleans()) else rv.SAGELayer(4, 3)
        assert np.isfinite(layer(x, value if draw(st.booleans()) else edges)).all()
    else:
        rv.LayerNorm(4, eps=value)


def _graph_store(draw):
    g = _graph()
    op = draw(st.sampled_from(["node", "labels", "embedding", "edge", "weight", "edges",
                               "neighbors", "k_hop", "subgraph", "save"]))
    value = draw(hostile())
    if op == "node":
        g.add_node(value)
    elif op == "labels":
        g.add_node("new", labels=value)
    elif op == "embedding":
        g.add_node("new", embedding=value)
    elif op == "edge":
        g.add_edge(0, value)
    elif op == "weight":
        g.add_edge(0, 1, weight=value)
        assert np.isfinite(g.arrays().weights).all()
    elif op == "edges":
        g.add_edges(value)
    elif op == "neighbors":
        g.neighbors(value, direction=draw(st.sampled_from(["out", "in", "both", value])))
    elif op == "k_hop":
        g.k_hop(0, value)
    elif op == "subgraph":
        subgraph_embedding(g, value)
    else:
        g.add_node("p", v=np.int64(3), arr=np.arange(2), big=value)
        g.save(os.path.join(tempfile.mkdtemp(), "g"))


def _training(draw):
    from ruvector.training import SGD, Adam, load_checkpoint, save_checkpoint
    layer = rv.Linear(4, 2)
    value = draw(hostile())
    op = draw(st.sampled_from(["sgd", "adam", "save", "load"]))
    if op == "sgd":
        SGD(layer, lr=value)
    elif op == "adam":
        Adam(layer, lr=0.1, betas=value)
    elif op == "save":
        save_checkpoint(layer, value)
    else:
        load_checkpoint(value)


def _cli(draw):
    from ruvector.cli import main
    # not "bench", "demo", "warmup" or "selftest": they run whole workloads by design (tests/cli
    # and tests/test_selftest.py have them)
    words = ["index", "build", "search", "info", "graph", "import", "query", "export",
             "visualize", "attention", "training", "eval",
             "--k", "-1", "0", "nan", "x", "--metric", "hamming", "/nonexistent", "--dim",
             "99999999999999999999", "--help", "--version", ""]
    argv = draw(st.lists(st.sampled_from(words), max_size=5))
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            code = main(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
        code = exc.code
    assert code in (0, 1, 2, None)


API = {"VectorStore()": _vector_store, "VectorStore.add": _add, "VectorStore.search": _search,
       "VectorStore get/delete/metadata/upsert": _read, "VectorStore.from_arrow": _arrow,
       "save/load": _persist, "scaled_dot_product_attention": _attention,
       "attention and GNN modules": _modules, "GraphStore": _graph_store,
       "training": _training, "CLI": _cli}

# -- queries: generated and mutated ---------------------------------------------------------
SEED_QUERIES = [  # <N> slots take drawn integers (huge, negative and zero among them)
    "MATCH (a)-[r]->(b) WHERE a.club = 'Mr. Hi' RETURN a, count(b) ORDER BY a LIMIT <N>",
    "MATCH (a {key: $k})-[*1..<N>]-(b) RETURN DISTINCT b SKIP 1 LIMIT 5",
    "MATCH p=(a)-->(b)-->(c) WHERE id(a) < id(c) RETURN p, length(p) LIMIT <N>",
    "MATCH (a)-->(b) ATTEND BY $v TOP <N> TEMPERATURE 0.5 RETURN b, score(b), score()",
    "MATCH (a) WHERE a.x IS NULL AND NOT a.key IN [1, 2, <N>] RETURN sum(a.key), avg(a.key)",
    "MATCH (a)-[r*<N>]-(b) WHERE size(r) = 2 RETURN a.key + b.key * 2 - $n % 3 AS s LIMIT 50",
    "MATCH (a), (b) WHERE a.key = b.key - <N> RETURN collect(a.key)[0], toUpper('x')",
    "MATCH (a)-[:T|U*]->(b) RETURN coalesce(b.name, 'none') ORDER BY b DESC LIMIT <N>",
    "MATCH (a)-[*<N>]-(b) RETURN a LIMIT 1",
    "MATCH (a) RETURN a.key * <N> + 9223372036854775000, a.key / <N> LIMIT 3",
    "MATCH (a {key: <N>}) OPTIONAL MATCH (a)-[r]->(b) WHERE b.key > <N> RETURN a, r, b.club",
    "MATCH (a)--(b) WITH a, count(*) AS d WHERE d > <N> RETURN a.key, d ORDER BY d DESC",
    "MATCH p = shortestPath((a {key: 0})-[*..<N>]-(b {key: <N>})) RETURN length(p), p",
    "MATCH (a {key: <N>}) RETURN a.key AS k UNION MATCH (b {key: 1}) RETURN b.key AS k",
    "PROFILE MATCH (a) WHERE a.club =~ 'M.*' RETURN count(*)",
]
SLOT_INTS = st.one_of(st.integers(0, 12), st.sampled_from(
    [-1, 2**31, 2**62, 2**63 - 1, 2**63, 99999999999999999999]))
TOKENS = ["MATCH", "RETURN", "WHERE", "LIMIT", "SKIP", "ORDER BY", "ATTEND BY", "TOP", "(",
          ")", "[", "]", "{", "}", "-", "->", "<-", "*", "..", ",", ":", ".", "$v", "$n", "$k",
          "a", "b", "r", "9223372036854775807", "99999999999999999999", "0", "-1", "1e308",
          "'s'", "\"", "null", "true", "=", "<>", "<", "+", "/", "%", "AND", "OR", "NOT",
          "IN", "count(*)", "score()", "DISTINCT", "//", "`x`", "\\u0000", "*10", "*0..",
          "size((a)--())", "=~ 'x'", "=~ '('", "OPTIONAL MATCH", "WITH", "AS d", "UNION",
          "UNION ALL", "EXPLAIN", "PROFILE", "shortestPath(", "allShortestPaths("]


@st.composite
def query_text(draw):
    """A seed query (its slots filled) as it is (40%), with one token edit (40%), with
    a few (10%), or a token soup (10%)."""
    mode = draw(st.integers(0, 9))
    if mode == 9:
        return " ".join(draw(st.lists(st.sampled_from(TOKENS), max_size=14)))
    template = draw(st.sampled_from(SEED_QUERIES))
    while "<N>" in template:
        template = template.replace("<N>", str(draw(SLOT_INTS)), 1)
    words = template.split(" ")
    for _ in range(0 if mode < 4 else 1 if mode < 8 else draw(st.integers(2, 4))):
        pos = draw(st.integers(0, len(words)))
        edit = draw(st.sampled_from(["insert", "delete", "replace"]))
        token = draw(st.sampled_from(TOKENS))
        if edit == "insert":
            words.insert(pos, token)
        elif words:
            pos = min(pos, len(words) - 1)
            if edit == "delete":
                del words[pos]
            else:
                words[pos] = token
    return " ".join(words)


class CompileClock(numba_event.Listener):
    """Seconds spent in Numba compilation (outermost compile events only)."""

    def __init__(self):
        self.seconds, self._depth, self._t0 = 0.0, 0, 0.0

    def on_start(self, event):
        if not self._depth:
            self._t0 = time.perf_counter()
        self._depth += 1

    def on_end(self, event):
        self._depth -= 1
        if not self._depth:
            self.seconds += time.perf_counter() - self._t0


def warm_up():
    """Compile the kernels the suites reach (Numba), so that compile time is not a hang."""
    x, edges = np.ones((5, 4), np.float32), np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    for layer in (rv.GATLayer(4, 3), rv.GINLayer(4, 8, 3), rv.SAGELayer(4, 3),
                  rv.SAGELayer(4, 3, aggr="max"), rv.SAGELayer(4, 3, aggr="sum")):
        layer(x, edges)
    rv.GATLayer(4, 4).forward_neighborhood(1, x, edges)
    rv.MultiHeadAttention(8, 2)(np.ones((3, 8)), np.ones((3, 8)), np.ones((3, 8)))
    q = np.ones((3, 4), np.float32)
    for kw in ({}, {"causal": True}, {"need_weights": True}, {"mask": np.eye(3, dtype=bool)}):
        scaled_dot_product_attention(q, q, q, **kw)
    scaled_dot_product_attention(q[0], q, q)
    for mask in (WindowedMask(1, global_tokens=[0]), BlockSparseMask(2, [(0, 0)]),
                 COOMask([0], [0], (4, 4))):
        rv.SparseAttention().forward_sparse(np.ones((4, 4)), np.ones((4, 4)), np.ones((4, 4)),
                                            mask)
    for metric in ("l2", "ip", "cosine"):
        s = _store(metric)
        for rerank in (None, "attention", "exact"):
            s.search(np.ones((2, 4)), 3, rerank=rerank, filter={"label": 1})
    g = _graph()
    g.query("MATCH (a)-->(b) ATTEND BY $v TOP 3 RETURN b, score()", {"v": [1.0, 0, 0, 0]})
    subgraph_embedding(g, [0, 1])


def run_suite(suite, examples, seed, log):
    counts, answered = Counter(), Counter()
    graph = _graph() if suite == "query" else None
    params_pool = [{"v": [1.0, 0, 0, 0], "n": 2, "k": 0}, {"v": "x", "n": 2**62, "k": None},
                   {"v": [np.nan] * 4, "n": float("inf"), "k": [1]}, {"n": -2**63}]

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def one_case(data):
        if suite == "api":
            name = data.draw(st.sampled_from(sorted(API)))
            fn = lambda: API[name](data.draw)  # noqa: E731
        else:
            name = "query"
            text = data.draw(query_text())
            params = data.draw(st.sampled_from(params_pool))
            limits = data.draw(st.sampled_from([  # each query stays well under a second
                {"max_expansions": 20_000}, {"max_hops": 3, "timeout": 0.05},
                {"max_expansions": 10**9, "timeout": 0.2, "max_memory": 1 << 24}]))
            fn = lambda: graph.query(text, params, **limits)  # noqa: E731
            log.write(f"query {text!r} {params!r} {limits!r}\n")
        counts[name] += 1
        log.write(f"case {counts[name]} of {name}\n")
        log.flush()
        faulthandler.dump_traceback_later(WATCHDOG_SECONDS, exit=True, file=log)
        compiled, t0 = compile_clock.seconds, time.perf_counter()
        try:
            fn()
            answered[name] += 1
        except RuvectorError:
            pass
        finally:
            faulthandler.cancel_dump_traceback_later()
        ran = time.perf_counter() - t0 - (compile_clock.seconds - compiled)
        assert ran < HANG_SECONDS, f"{name} ran {ran:.1f} s (Numba compile time excluded)"

    warm_up()
    compile_clock = CompileClock()
    with numba_event.install_listener("numba:compile", compile_clock):
        one_case()
    return {name: {"cases": n, "answered": answered[name], "typed_errors": n - answered[name]}
            for name, n in sorted(counts.items())}


if __name__ == "__main__":
    suite, examples, seed, log_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    log_path = os.path.abspath(log_path)
    # hostile paths ("x", "\b", ...) are relative: let them land in a scratch directory
    os.chdir(tempfile.mkdtemp(prefix="ruvector-fuzz-"))
    with open(log_path, "w") as log:
        counts = run_suite(suite, examples, seed, log)
    print(json.dumps(counts))
