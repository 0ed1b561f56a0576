"""Query execution: clause by clause on hand-made graphs, against a brute-force matcher on
random graphs (with and without push-down), ATTEND against a NumPy beam search, limits
and error paths."""
from collections import Counter

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ruvector.errors import QueryError, QueryLimitExceeded, QuerySyntaxError
from ruvector.graph import GraphStore
from ruvector.graph.query import run_query


@pytest.fixture
def people():
    G = nx.MultiDiGraph()
    rows = [("ann", 30, "Person"), ("bob", 25, "Person"), ("cat", 41, "Person"),
            ("dog", 3, "Animal")]
    for i, (name, age, label) in enumerate(rows):
        G.add_node(name, label=label, age=age, name=name.upper(), embedding=np.eye(4)[i])
    G.add_edge("ann", "bob", type="KNOWS", since=2010)   # edge 0
    G.add_edge("ann", "cat", type="LIKES")                # edge 1
    G.add_edge("ann", "cat", type="LIKES")                # edge 2 (parallel)
    G.add_edge("bob", "cat", type="KNOWS", since=2015)   # edge 3
    G.add_edge("cat", "dog", type="OWNS")                 # edge 4
    G.add_edge("cat", "ann", type="KNOWS")                # edge 5
    return GraphStore.from_networkx(G)


def rows(g, text, **params):
    return g.query(text, params).rows


def test_directions_types_labels(people):
    assert rows(people, "MATCH (a)-[:KNOWS]->(b) RETURN a.key, b.key ORDER BY a.key") == \
        [("ann", "bob"), ("bob", "cat"), ("cat", "ann")]
    assert rows(people, "MATCH (a {key: 'cat'})<-[r]-(b) RETURN b.key, id(r) ORDER BY id(r)") == \
        [("ann", 1), ("ann", 2), ("bob", 3)]
    assert sorted(rows(people, "MATCH (a {key: 'cat'})-[:KNOWS|OWNS]-(b) RETURN b.key")) == \
        [("ann",), ("bob",), ("dog",)]
    assert rows(people, "MATCH (a:Animal)<--(b:Person) RETURN b.name") == [("CAT",)]
    assert rows(people, "MATCH (a:Animal|Robot) RETURN a.key") == [("dog",)]
    assert rows(people, "MATCH (a)-[r:LIKES]->(b) RETURN count(r)") == [(2,)]
    assert rows(people, "MATCH (a)-[r {since: 2015}]->(b) RETURN a.key, r.since, type(r)") == \
        [("bob", 2015, "KNOWS")]


def test_digraph_input_and_undirected_store():
    D = nx.DiGraph([(0, 1), (1, 2), (2, 0), (2, 2)])
    g = GraphStore.from_networkx(D)
    assert sorted(rows(g, "MATCH (a {key: 2})-->(b) RETURN b.key")) == [(0,), (2,)]
    assert sorted(rows(g, "MATCH (a {key: 2})--(b) RETURN b.key")) == [(0,), (1,), (2,)]
    U = GraphStore.from_networkx(nx.Graph([(0, 1), (1, 2), (2, 2)]))
    # an undirected store matches every direction both ways; a self-loop counts once
    assert sorted(rows(U, "MATCH (a {key: 1})-->(b) RETURN b.key")) == [(0,), (2,)]
    assert sorted(rows(U, "MATCH (a {key: 2})<--(b) RETURN b.key")) == [(1,), (2,)]


def test_variable_length_and_paths(people):
    res = people.query("MATCH p=(a {key: 'ann'})-[:KNOWS*]->(b) RETURN p, length(p), b.key")
    assert [r[1:] for r in res.rows] == [(1, "bob"), (2, "cat"), (3, "ann")]
    assert res.rows[2][0] == {"nodes": ["ann", "bob", "cat", "ann"], "relationships": [0, 3, 5]}
    assert rows(people, "MATCH (a {key: 'ann'})-[*0]->(b) RETURN b.key") == [("ann",)]
    assert rows(people, "MATCH (a {key: 'dog'})<-[*2]-(b) RETURN b.key ORDER BY b.key") == \
        [("ann",), ("ann",), ("bob",)]
    # relationship uniqueness: ann-bob-ann would reuse edge 0
    assert rows(people, "MATCH (a {key: 'ann'})-[r:KNOWS*2..2]-(b) RETURN b.key, size(r) "
                        "ORDER BY b.key") == [("bob", 2), ("cat", 2)]
    # a path walked backwards still lists its nodes in pattern order
    res = people.query("MATCH p=(x)-[*2]->(y {key: 'dog'}) WHERE x.key = 'bob' RETURN p")
    assert res.rows == [({"nodes": ["bob", "cat", "dog"], "relationships": [3, 4]},)]


def test_unbounded_star_stops_at_max_hops_and_explicit_bound_is_checked(people):
    long = GraphStore.from_networkx(nx.path_graph(30, create_using=nx.DiGraph))
    r = long.query("MATCH (a {key: 0})-[*]->(b) RETURN max(b.key)", max_hops=7)
    assert r.rows == [(7,)]
    with pytest.raises(QueryError, match="max_hops"):
        long.query("MATCH (a {key: 0})-[*..20]->(b) RETURN b", max_hops=7)


def test_cycles_joins_and_cartesian(people):
    assert sorted(rows(people, "MATCH (a)-->(b)-->(a) RETURN a.key, b.key")) == \
        [("ann", "cat"), ("ann", "cat"), ("cat", "ann"), ("cat", "ann")]
    assert rows(people, "MATCH (a {key: 'ann'}), (b:Animal) RETURN a.key, b.key") == \
        [("ann", "dog")]
    assert rows(people, "MATCH (a)-[:KNOWS]->(b), (b)-[:OWNS]->(c) RETURN a.key, c.key") == \
        [("bob", "dog")]


def test_where_expressions(people):
    q = "MATCH (n) WHERE {} RETURN n.key ORDER BY n.key"
    assert rows(people, q.format("n.age >= 25 AND n.age < 41")) == [("ann",), ("bob",)]
    assert rows(people, q.format("n.name STARTS WITH 'C' OR n.name ENDS WITH 'OB'")) == \
        [("bob",), ("cat",)]
    assert rows(people, q.format("n.name CONTAINS 'O' XOR n.age > 20")) == \
        [("ann",), ("cat",), ("dog",)]
    assert rows(people, q.format("NOT n.age IN [3, 30]")) == [("bob",), ("cat",)]
    assert rows(people, q.format("n.missing IS NULL AND n.age IS NOT NULL")) == \
        [("ann",), ("bob",), ("cat",), ("dog",)]
    assert rows(people, q.format("n.missing = 1 OR n.age % 2 = 1")) == [("bob",), ("cat",),
                                                                           ("dog",)]
    assert rows(people, q.format("(n.age + 5) / 2 = 17 OR toUpper(n.key) = 'DOG'")) == \
        [("ann",), ("dog",)]
    assert rows(people, q.format("n.key IN $keys"), keys=["bob", "dog"]) == [("bob",), ("dog",)]
    assert rows(people, q.format("1 = 2")) == []
    assert rows(people, "MATCH (n {key: 'ann'}) RETURN 7 / 2, -7 / 2, 7 % -2, 7.0 / 2, "
                        "'a' + 1, [1] + [2], null + 1, coalesce(null, n.age), size('abc')") == \
        [(3, -3, 1, 3.5, "a1", [1, 2], None, 30, 3)]
    assert rows(people, "MATCH (n {key: 'ann'}) RETURN labels(n), id(n), n.key") == \
        [(["Person"], 0, "ann")]


def test_aggregates(people):
    assert rows(people, "MATCH (n) RETURN count(*), count(n.missing), sum(n.age), avg(n.age), "
                        "min(n.age), max(n.name), collect(n.age)") == \
        [(4, 0, 99, 24.75, 3, "DOG", [30, 25, 41, 3])]
    assert rows(people, "MATCH (a)-->(b) RETURN a.key AS k, count(*) AS c, "
                        "count(DISTINCT b) AS d ORDER BY c DESC, k") == \
        [("ann", 3, 2), ("cat", 2, 2), ("bob", 1, 1)]
    assert rows(people, "MATCH (n:Nothing) RETURN count(*), sum(n.age), collect(n)") == \
        [(0, 0, [])]
    assert rows(people, "MATCH (n:Nothing) RETURN n.key, count(*)") == []
    assert rows(people, "MATCH (n) RETURN count(*) * 2 + 1 AS x") == [(9,)]


def test_distinct_order_skip_limit(people):
    assert rows(people, "MATCH (a)-->(b) RETURN DISTINCT b.key ORDER BY b.key DESC") == \
        [("dog",), ("cat",), ("bob",), ("ann",)]
    assert rows(people, "MATCH (n) RETURN n.key ORDER BY n.age SKIP 1 LIMIT 2") == \
        [("bob",), ("ann",)]
    assert rows(people, "MATCH (n) RETURN n.key AS k ORDER BY k SKIP $s LIMIT $l",
                s=3, l=10) == [("dog",)]
    # nulls sort last ascending, first descending
    assert rows(people, "MATCH (n) RETURN n.since ORDER BY n.missing, n.key LIMIT 1") == \
        [(None,)]
    assert rows(people, "MATCH (a)-[r]->(b) RETURN r.since ORDER BY r.since DESC LIMIT 2") == \
        [(None,), (None,)]
    assert rows(people, "MATCH (a)-[r]->(b) RETURN r.since ORDER BY r.since LIMIT 2") == \
        [(2010,), (2015,)]
    with pytest.raises(QueryError, match="not available"):
        people.query("MATCH (n) RETURN DISTINCT n.key ORDER BY n.age")
    with pytest.raises(QueryError, match="non-negative"):
        people.query("MATCH (n) RETURN n LIMIT $l", {"l": -1})


def test_result_api(people):
    res = people.query("MATCH (a)-[r:KNOWS]->(b) RETURN a.key AS a, r, b.age ORDER BY a")
    assert res.columns == ["a", "r", "b.age"] and len(res) == 3
    assert list(res)[0] == {"a": "ann", "r": {"id": 0, "type": "KNOWS", "source": "ann",
                                              "target": "bob"}, "b.age": 25}
    table = res.to_arrow()
    assert table.column_names == ["a", "r", "b.age"] and table.num_rows == 3
    assert table.column("b.age").to_pylist() == [25, 41, 30]
    assert res.stats["rows"] == 3 and res.stats["edges_scanned"] > 0 and res.stats["ms"] >= 0
    # a column mixing kinds is kept as JSON text, not dropped
    mixed = people.query("MATCH (n) RETURN [n.age, n.name][n.age % 2] AS x").to_arrow()
    assert mixed.column("x").to_pylist() == ["30", '"BOB"', '"CAT"', '"DOG"']


def test_explain_shows_index_and_pushdown(people, capsys):
    plan = people.explain("MATCH (a:Person)-[:KNOWS]->(b {key: $k}) WHERE a.age > 3 "
                          "AND b.age < 50 RETURN a LIMIT 2", {"k": "cat"})
    assert "Scan b [index lookup key = $k]" in plan
    assert plan.index("filter (b.age < 50)") < plan.index("Expand (b)<-")
    assert "filter (a.age > 3)" in plan and "LIMIT pushed down" in plan
    assert capsys.readouterr().out.strip() == plan.strip()
    other = people.explain("MATCH (a:Animal)<--(b) WHERE b.name = 'CAT' RETURN b")
    assert "label scan" in other


def test_property_index_lookup(people):
    assert rows(people, "MATCH (a:Person {name: 'BOB'})-->(b) RETURN b.key") == [("cat",)]
    assert rows(people, "MATCH (a {age: 30.0}) RETURN a.key") == [("ann",)]
    assert rows(people, "MATCH (a {age: true}) RETURN a.key") == []
    people.add_node("eve", labels="Person", name="BOB")
    assert sorted(rows(people, "MATCH (a {name: 'BOB'}) RETURN a.key")) == [("bob",), ("eve",)]


def test_limit_pushdown_stops_early():
    g = GraphStore.from_networkx(nx.path_graph(5000, create_using=nx.DiGraph))
    res = g.query("MATCH (a)-->(b) RETURN a.key LIMIT 3")
    assert res.rows == [(0,), (1,), (2,)]
    assert res.stats["edges_scanned"] < 200


# -- brute-force reference -------------------------------------------------------------------
def reference_match(store, node_labels, rels):
    """All matches of a chain pattern: tuples (n0, edges0, n1, edges1, ...)."""
    src, dst, typ = store._src, store._dst, store._type
    def steps(u, types, direction):
        for e in range(len(src)):
            if types and typ[e] not in types:
                continue
            if direction in ("out", "both") and src[e] == u:
                yield e, dst[e]
            if direction in ("in", "both") and dst[e] == u and \
                    (direction == "in" or src[e] != dst[e]):
                yield e, src[e]

    def ok(i, labels):
        return not labels or not set(labels).isdisjoint(store._labels[i])

    out = []

    def extend(pos, cur, used, assign):
        if pos == len(rels):
            out.append(tuple(assign))
            return
        types, direction, lo, hi = rels[pos]

        def walk(u, path, used):
            if lo <= len(path) and ok(u, node_labels[pos + 1]):
                extend(pos + 1, u, used, assign + [tuple(path), u])
            if len(path) == hi:
                return
            for e, v in steps(u, types, direction):
                if e not in used:
                    walk(v, path + [e], used | {e})
        walk(cur, [], used)

    for s in range(store.num_nodes):
        if ok(s, node_labels[0]):
            extend(0, s, frozenset(), [s])
    return out


def random_store(seed, n=6, m=11):
    rng = np.random.default_rng(seed)
    g = GraphStore(3)
    for i in range(n):
        g.add_node(i, labels=[("X",), ("Y",), ("X", "Y"), ()][rng.integers(4)],
                   embedding=rng.standard_normal(3), v=int(rng.integers(0, 4)))
    for _ in range(m):
        g.add_edge(int(rng.integers(n)), int(rng.integers(n)), type=["A", "B"][rng.integers(2)])
    return g


pattern_rel = st.tuples(st.sampled_from([(), ("A",), ("B",), ("A", "B")]),
                        st.sampled_from(["out", "in", "both"]),
                        st.sampled_from([(1, 1, False), (0, 2, True), (1, 3, True),
                                         (2, 2, True), (1, 1, True)]))


def _query_text(labels, rels, where):
    arrows = {"out": ("-", "->"), "in": ("<-", "-"), "both": ("-", "-")}
    text = f"MATCH (n0{':' + '|'.join(labels[0]) if labels[0] else ''})"
    for i, (types, direction, (lo, hi, var)) in enumerate(rels):
        left, right = arrows[direction]
        t = ":" + "|".join(types) if types else ""
        hops = f"*{lo}..{hi}" if var else ""
        lab = ":" + "|".join(labels[i + 1]) if labels[i + 1] else ""
        text += f"{left}[r{i}{t}{hops}]{right}(n{i + 1}{lab})"
    if where:
        text += f" WHERE {where}"
    ret = []
    for i in range(len(rels) + 1):
        ret.append(f"id(n{i})")
        if i < len(rels):
            ret.append(f"r{i}")
    return text + " RETURN " + ", ".join(ret)


def _normalise(row):
    out = []
    for v in row:
        if isinstance(v, dict):
            out.append((v["id"],))
        elif isinstance(v, list):
            out.append(tuple(d["id"] for d in v))
        else:
            out.append(v)
    return tuple(out)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.lists(pattern_rel, min_size=1, max_size=3),
       st.lists(st.sampled_from([(), ("X",), ("Y",), ("X", "Y")]), min_size=4, max_size=4),
       st.sampled_from([None, "n0.v > 1", "n1.v <= n0.v", "n0.v + n1.v = 3 OR n1.v = 0"]))
def test_matches_brute_force_with_and_without_pushdown(seed, rels, labels, where):
    g = random_store(seed)
    labels = labels[:len(rels) + 1]
    text = _query_text(labels, rels, where)
    got = Counter(_normalise(r) for r in run_query(g, text).rows)
    unpushed = Counter(_normalise(r) for r in run_query(g, text, pushdown=False).rows)
    ref_rels = [(types, d, lo, hi) for types, d, (lo, hi, _) in rels]
    expected = []
    for m in reference_match(g, labels, ref_rels):
        nodes = m[0::2]
        if where is not None:
            v = [g._props[i]["v"] for i in nodes]
            env = {"n0.v": v[0], "n1.v": v[1]}
            cond = {"n0.v > 1": lambda: env["n0.v"] > 1,
                    "n1.v <= n0.v": lambda: env["n1.v"] <= env["n0.v"],
                    "n0.v + n1.v = 3 OR n1.v = 0":
                        lambda: env["n0.v"] + env["n1.v"] == 3 or env["n1.v"] == 0}[where]
            if not cond():
                continue
        expected.append(tuple(x if i % 2 == 0 else tuple(x) for i, x in enumerate(m)))
    assert got == Counter(expected) == unpushed


# -- ATTEND -------------------------------------------------------------------------------------
def beam_reference(store, start, hops, q, k, t, direction="out"):
    """NumPy beam search: per partial path, softmax over its candidates, keep top k."""
    X = store.features.astype(np.float64)
    scale = 1.0 / (np.sqrt(X.shape[1]) * t)
    src, dst = np.array(store._src), np.array(store._dst)
    partial = [((start,), (), 1.0, ())]
    for _ in range(hops):
        nxt = []
        for nodes, edges, score, ws in partial:
            u = nodes[-1]
            cand = [(e, dst[e]) for e in range(len(src)) if src[e] == u and e not in edges]
            if direction == "both":
                cand += [(e, src[e]) for e in range(len(src))
                         if dst[e] == u and src[e] != dst[e] and e not in edges]
            if not cand:
                continue
            qv = q if q is not None else X[nodes[0]]
            logits = np.array([qv @ X[v] * scale for _, v in cand])
            w = np.exp(logits - logits.max())
            w /= w.sum()
            for j in np.argsort(-w, kind="stable")[:k]:
                e, v = cand[j]
                nxt.append((nodes + (v,), edges + (e,), score * w[j], ws + (w[j],)))
        partial = nxt
    return partial


@pytest.mark.parametrize("by_param", [True, False])
@pytest.mark.parametrize("k, t", [(1, 1.0), (2, 0.5), (3, 2.0)])
def test_attend_matches_numpy_beam_search(by_param, k, t):
    rng = np.random.default_rng(7)
    G = nx.gnm_random_graph(40, 240, seed=3, directed=True)
    for i in G:
        G.nodes[i]["embedding"] = rng.standard_normal(8)
    g = GraphStore.from_networkx(G)
    q = rng.standard_normal(8)
    source = "$q" if by_param else "s"
    text = (f"MATCH (s {{key: 0}})-->(a)-->(b)-->(c) ATTEND BY {source} TOP $k "
            f"TEMPERATURE {t} RETURN a.key, b.key, c.key, score(a), score(c), score()")
    res = g.query(text, {"q": q, "k": k})
    ref = beam_reference(g, 0, 3, q if by_param else None, k, t)
    got = {r[:3]: r[3:] for r in res.rows}
    assert len(res.rows) == len(ref) == len(got)
    for nodes, _, score, ws in ref:
        sa, sc, total = got[nodes[1:]]
        assert np.allclose([sa, sc, total], [ws[0], ws[2], score], rtol=1e-5)
    totals = [r[5] for r in res.rows]
    assert totals == sorted(totals, reverse=True)


def test_attend_variable_length_and_where_filters_before_scoring():
    rng = np.random.default_rng(1)
    G = nx.gnm_random_graph(30, 150, seed=5, directed=True)
    for i in G:
        G.nodes[i]["embedding"] = rng.standard_normal(4)
        G.nodes[i]["odd"] = i % 2 == 1
    g = GraphStore.from_networkx(G)
    q = rng.standard_normal(4)
    var = g.query("MATCH (s {key: 0})-[*3]->(c) ATTEND BY $q TOP 2 RETURN c.key, score()",
                  {"q": q})
    fixed = g.query("MATCH (s {key: 0})-->()-->()-->(c) ATTEND BY $q TOP 2 "
                    "RETURN c.key, score()", {"q": q})
    a, b = sorted(var.rows), sorted(fixed.rows)
    assert [r[0] for r in a] == [r[0] for r in b] and len(a) == 8
    assert np.allclose([r[1] for r in a], [r[1] for r in b], rtol=1e-12)
    # candidates failing WHERE are removed before the softmax
    res = g.query("MATCH (s {key: 0})-->(a) WHERE a.odd ATTEND BY $q TOP 100 "
                  "RETURN a.key, score(a)", {"q": q})
    odd = [v for v in G.successors(0) if v % 2]
    X = g.features.astype(np.float64)
    w = np.exp(X[odd] @ q / 2.0)
    w /= w.sum()
    assert dict(res.rows) == pytest.approx(dict(zip(odd, w)))


# -- limits and errors ---------------------------------------------------------------------------
def test_limits_raise_with_stats():
    g = GraphStore.from_networkx(nx.complete_graph(12, create_using=nx.DiGraph))
    with pytest.raises(QueryLimitExceeded) as info:
        g.query("MATCH (a)-[*1..4]->(b) RETURN count(*)", max_expansions=5000)
    assert info.value.stats["edges_scanned"] > 5000
    with pytest.raises(QueryLimitExceeded, match="timeout"):
        g.query("MATCH (a)-[*1..6]->(b) RETURN count(*)", timeout=1e-4,
                max_expansions=10**12)
    for bad in ({"max_hops": 0}, {"max_expansions": -1}, {"timeout": 0}):
        with pytest.raises(QueryError):
            g.query("MATCH (a) RETURN a", **bad)


@pytest.mark.parametrize("text, params, match", [
    ("MATCH (a) RETURN b", {}, "unknown variable 'b'"),
    ("MATCH (a) WHERE c.x = 1 RETURN a", {}, "unknown variable 'c'"),
    ("MATCH (a) RETURN frobnicate(a)", {}, r"unknown function frobnicate\(\)"),
    ("MATCH (a) WHERE count(*) > 1 RETURN a", {}, "not allowed in WHERE"),
    ("MATCH (a) RETURN count(count(a))", {}, "nested"),
    ("MATCH (a) RETURN size(a.x, 1)", {}, "argument"),
    ("MATCH (a {key: $k}) RETURN a", {}, r"missing parameter.*\$k"),
    ("MATCH (a) ATTEND BY $q RETURN a", {"q": "text"}, "vector"),
    ("MATCH (a)-->(b) ATTEND BY $q RETURN a", {"q": [1.0, 2.0]}, "width"),
    ("MATCH (a)-->(b) ATTEND BY $q RETURN a", {"q": [1.0, np.nan, 0, 0]}, "NaN"),
    ("MATCH (a)-->(b) ATTEND BY $q TOP $k RETURN a", {"q": [1, 0, 0, 0], "k": 0}, "positive"),
    ("MATCH (a)-->(b) ATTEND BY $q TEMPERATURE 0 RETURN a", {"q": [1, 0, 0, 0]}, "TEMPERATURE"),
    ("MATCH (a)-[r]->(b) ATTEND BY r RETURN a", {}, "not a node variable"),
    ("MATCH (a) RETURN score(a)", {}, "only defined"),
    ("MATCH (a)-->(b) ATTEND BY $q RETURN count(*) ORDER BY score()", {"q": [1, 0, 0, 0]},
     "after aggregation"),
    ("MATCH (a)-[r]->(b), (c)-[r]->(d) RETURN a", {}, "bound twice"),
    ("MATCH (a)-[a]->(b) RETURN a", {}, "both as a node"),
    ("MATCH (a) RETURN a.x AS y, a.z AS y", {}, "duplicate"),
    ("MATCH (a) WHERE a.age RETURN a", {}, "boolean"),
    ("MATCH (a) RETURN a.age / 0", {}, "division by zero"),
    ("MATCH (a) RETURN a.name - 1", {}, "cannot apply"),
    ("MATCH (a) RETURN a", [1], "dict"),
])
def test_error_paths(people, text, params, match):
    with pytest.raises(QueryError, match=match):
        people.query(text, params)


def test_graph_without_embeddings_cannot_attend():
    g = GraphStore.from_networkx(nx.path_graph(3, create_using=nx.DiGraph))
    with pytest.raises(QueryError, match="embeddings"):
        g.query("MATCH (a)-->(b) ATTEND BY $q RETURN b", {"q": [1.0]})


def test_numpy_values_in_properties_and_parameters():
    g = GraphStore()
    g.add_node(1, v=np.int64(3), vec=np.array([1.0, 2.0]))
    g.add_node(2, v=2.5)
    g.add_node(3, v=np.float32(7.5), flag=np.bool_(True))
    assert g.query("MATCH (a) WHERE a.v > $x RETURN a.key ORDER BY a.v DESC",
                   {"x": np.float32(2.6)}).rows == [(3,), (1,)]
    assert g.query("MATCH (a {key: $k}) RETURN a.vec, size(a.vec)", {"k": np.int64(1)}).rows == \
        [([1.0, 2.0], 2)]
    assert g.query("MATCH (a) WHERE a.flag RETURN a.key").rows == [(3,)]
    row = g.query("MATCH (a) RETURN collect(a.v), max(a.v)").rows[0]
    assert row == ([3, 2.5, 7.5], 7.5) and type(row[0][0]) is int


ATOMS = ["a.s", "a.i", "a.f", "a.b", "a.l", "a.n", "a.missing", "1", "2.5", "'q'", "true",
         "null", "[1, 'x']", "a", "r", "id(a)", "labels(a)", "type(r)", "$p", "$lst"]
OPS = ["=", "<>", "<", ">=", "+", "-", "*", "/", "%", "AND", "OR", "XOR", "IN", "STARTS WITH",
       "CONTAINS"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ATOMS), st.sampled_from(OPS), st.sampled_from(ATOMS), st.booleans())
def test_expressions_of_any_types_raise_only_query_errors(x, op, y, in_where):
    g = GraphStore()
    g.add_node(1, s="abc", i=3, f=2.5, b=True, l=[1, 2])
    g.add_node(2, s="xyz", i=-4, f=float("nan"), b=False, l=["a"])
    g.add_edge(1, 2, type="T")
    text = (f"MATCH (a)-[r]->(b) WHERE {x} {op} {y} RETURN a.key" if in_where else
            f"MATCH (a)-[r]->(b) RETURN {x} {op} {y} AS v ORDER BY v")
    try:
        g.query(text, {"p": 3, "lst": [1, 2]})
    except QueryError:
        pass


@pytest.mark.parametrize("expr, match", [
    ("9223372036854775807 * 2", r"overflow: 9223372036854775807 \* 2"),
    ("9223372036854775807 + 1", "overflow"),
    ("-9223372036854775807 - 2", "overflow"),
    ("(-9223372036854775807 - 1) / -1", "overflow"),
    ("-(-9223372036854775807 - 1)", "overflow"),
    ("3000000000 * 3000000000 * 3000000000", "overflow"),
    ("a.i * 9223372036854775807", "overflow"),          # a column of integers
    ("99999999999999999999", "outside the 64-bit"),
    ("$x % 99999999999999999999999", "outside the 64-bit"),
    ("$big + 1", r"parameter \$big"),
    ("$nested", r"parameter \$nested"),
    (" OR ".join(["true"] * 331), "more than 150 operators"),
    (" + ".join(["1"] * 331), "more than 150 operators"),
    (" < ".join(["1"] * 331), "more than 150 operators"),
])
def test_integers_are_64_bit_and_expressions_bounded(expr, match):
    g = GraphStore()
    g.add_node(1, i=3)
    g.add_node(2, i=-4)
    params = {"x": float("inf"), "big": 2**70, "nested": [1, {"k": [2**64]}]}
    used = {k: v for k, v in params.items() if "$" + k in expr}
    with pytest.raises(QueryError, match=match):
        g.query(f"MATCH (a) RETURN {expr} LIMIT 1", used)
    with pytest.raises(QueryError, match="outside the 64-bit"):
        g.query("MATCH (a)-->(b) ATTEND BY $v TOP 99999999999999999999 RETURN b",
                {"v": [1.0]})


def test_integer_arithmetic_at_the_edges_is_exact():
    g = GraphStore()
    g.add_node(1, i=-9223372036854775807 - 1, j=7)
    one = lambda expr: g.query(f"MATCH (a) RETURN {expr}").rows[0][0]  # noqa: E731
    assert one("a.i / 2") == -4611686018427387904            # truncates toward zero
    assert one("a.i % 3") == -(2**63 % 3) and one("-7 % 3") == -1 and one("7 % -3") == 1
    assert one("a.j / -2") == -3 and one("-7 / 2") == -3
    assert one("a.i + 9223372036854775807") == -1
    assert one("4611686018427387904 * -2") == -2**63
    assert one(" + ".join(["1"] * 149)) == 149


def test_float_modulo_of_infinity_is_nan():
    g = GraphStore()
    g.add_node(1, f=float("inf"))
    row = g.query("MATCH (a) RETURN $x % 3, a.f % 2, 5.5 % 0", {"x": float("inf")}).rows[0]
    assert all(np.isnan(v) for v in row)


def test_limit_is_pushed_into_a_last_variable_length_step():
    k40 = GraphStore.from_networkx(nx.complete_graph(40))
    res = k40.query("MATCH (a)-[*10]-(b) RETURN a LIMIT 1")
    assert len(res.rows) == 1 and res.stats["edges_scanned"] < 100_000
    three = k40.query("MATCH p=(a)-[*10]-(b) RETURN p LIMIT 3").rows
    for (path,) in three:  # each a genuine 10-edge trail: no edge used twice
        edges = path["relationships"]
        assert len(edges) == 10 and len(set(edges)) == 10 and len(path["nodes"]) == 11


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), pattern_rel, st.integers(1, 12),
       st.sampled_from([None, "n1.v > 1"]))
def test_limited_variable_length_rows_are_rows_of_the_full_answer(seed, rel, limit, where):
    g = random_store(seed)
    types, direction, (lo, hi, _) = rel
    text = _query_text([(), ()], [(types, direction, (lo, hi, True))], where)
    full = Counter(_normalise(r) for r in run_query(g, text).rows)
    got = Counter(_normalise(r) for r in run_query(g, text + f" LIMIT {limit}").rows)
    assert sum(got.values()) == min(limit, sum(full.values()))
    assert not got - full  # every limited row (with multiplicity) is in the full answer


def test_memory_and_time_are_bounded_inside_an_expansion():
    k40 = GraphStore.from_networkx(nx.complete_graph(40))
    with pytest.raises(QueryLimitExceeded, match="max_memory") as info:
        k40.query("MATCH (a)-[*1..8]-(b) RETURN count(*)", max_expansions=10**12)
    assert info.value.stats["edges_scanned"] > 10**6
    with pytest.raises(QueryLimitExceeded, match="max_memory"):
        k40.query("MATCH (a), (b), (c) RETURN count(*)", max_memory=1000)
    with pytest.raises(QueryLimitExceeded, match="timeout"):  # checked between filters too
        k40.query("MATCH (a)-->(b) WHERE a.x IS NULL AND b.y IS NULL RETURN count(*)",
                  timeout=1e-9)
    with pytest.raises(QueryError, match="max_memory"):
        k40.query("MATCH (a) RETURN a", max_memory=0)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([
    "MATCH (a), (b) RETURN id(a), id(b)",
    "MATCH (a)-[r]->(b), (c) WHERE c.v > 1 RETURN id(a), r, id(b), id(c)",
    "MATCH (a:X), (b:Y) WHERE a.v <= b.v RETURN id(a), id(b)",
    "MATCH (a), (b)-[*1..2]-(c) WHERE a.v = 0 RETURN id(a), id(b), id(c)"]),
    st.integers(1, 15))
def test_multi_pattern_limits_return_rows_of_the_full_answer(seed, text, limit):
    g = random_store(seed)
    full = Counter(_normalise(r) for r in run_query(g, text, pushdown=False).rows)
    assert Counter(_normalise(r) for r in run_query(g, text).rows) == full
    got = Counter(_normalise(r) for r in run_query(g, text + f" LIMIT {limit}").rows)
    assert sum(got.values()) == min(limit, sum(full.values())) and not got - full


def test_limit_is_pushed_into_a_last_cartesian_scan():
    g = GraphStore.from_networkx(nx.empty_graph(20_000))
    res = g.query("MATCH (a), (b) RETURN a, b LIMIT 1")
    assert len(res.rows) == 1 and res.stats["edges_scanned"] < 1000
    res = g.query("MATCH (a), (b) WHERE b.key > 19990 RETURN a, b LIMIT 5")
    assert len(res.rows) == 5 and all(b > 19990 for _, b in res.rows)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="abAB.-", max_size=5), min_size=1, max_size=8),
       st.sampled_from(["a.*", "[ab]+", ".", "A|b", "(ab)*", "a?b?", ".*-.*", "\\\\."]))
def test_regex_match_is_a_full_match_as_in_cypher(names, pattern):
    import re
    g = GraphStore()
    for i, name in enumerate(names):
        g.add_node(i, name=name)
    got = sorted(r[0] for r in g.query("MATCH (n) WHERE n.name =~ $p RETURN n.key",
                                       {"p": pattern}).rows)
    assert got == [i for i, n in enumerate(names) if re.fullmatch(pattern, n)]
    assert g.query("MATCH (n) RETURN n.missing =~ 'x' AS m LIMIT 1").rows == [(None,)]
    with pytest.raises(QueryError, match="regular expression"):
        g.query("MATCH (n) WHERE n.name =~ '(' RETURN n")


def test_explain_and_profile_prefixes(people):
    text = "MATCH (a:Person)-[:KNOWS]->(b) WHERE b.age > 3 RETURN a.key, b.key"
    explained = people.query("EXPLAIN " + text)
    assert explained.columns == ["plan"] and explained.plan == people.explain(text)
    assert [r[0] for r in explained.rows] == explained.plan.splitlines()
    plain = people.query(text)
    profiled = people.query("profile " + text)
    assert sorted(profiled.rows) == sorted(plain.rows)
    steps = profiled.stats["profile"]
    numbered = [line for line in explained.plan.splitlines() if line[2:3].isdigit()]
    assert [s["step"] for s in steps] == [line.split(". ", 1)[1] for line in numbered]
    assert sum(s["expansions"] for s in steps) == profiled.stats["edges_scanned"]
    assert steps[-1]["rows"] == len(plain.rows)
    assert "rows," in profiled.plan and "expansions" in profiled.plan


def test_union_and_union_all_against_their_parts(people):
    a = "MATCH (x)-[:KNOWS]->(y) RETURN y.key AS k"
    b = "MATCH (x {key: 'ann'})-->(y) RETURN y.key AS k"
    rows_a, rows_b = people.query(a).rows, people.query(b).rows
    both = people.query(f"{a} UNION ALL {b}").rows
    assert Counter(both) == Counter(rows_a) + Counter(rows_b)
    union = people.query(f"{a} UNION {b}").rows
    assert len(union) == len(set(union)) and set(union) == set(rows_a) | set(rows_b)
    with pytest.raises(QueryError, match="same columns"):
        people.query(f"{a} UNION MATCH (x) RETURN x.key AS other")
    with pytest.raises(QueryError, match="cannot be mixed"):
        people.query(f"{a} UNION {b} UNION ALL {a}")
    assert "UNION" in people.explain(f"{a} UNION {b}")


def test_errors_say_where_and_what_was_expected(people):
    with pytest.raises(QueryError) as info:
        people.query("MATCH (a)\nWHERE c.age > 1 RETURN a")
    assert (info.value.line, info.value.column) == (2, 7) and "line 2, column 7" in \
        str(info.value)
    with pytest.raises(QuerySyntaxError, match=r"expected one of '\)', ':', '\{'"):
        people.query("MATCH (a RETURN a")
    with pytest.raises(QuerySyntaxError, match="expected a name"):
        people.query("MATCH (a)-[r:]->(b) RETURN a")


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.booleans(), st.integers(1, 4))
def test_shortest_paths_agree_with_networkx(seed, directed, max_hops):
    G = nx.gnp_random_graph(12, 0.2, seed=seed, directed=directed)
    g = GraphStore.from_networkx(G)
    arrow = "->" if directed else "-"
    for s in range(0, 12, 3):
        lengths = nx.single_source_shortest_path_length(G, s, cutoff=max_hops)
        res = g.query(f"MATCH p = shortestPath((a {{key: $s}})-[*..{max_hops}]{arrow}(b)) "
                      "RETURN b.key, length(p), p", {"s": s})
        got = {b: n for b, n, _ in res.rows}
        assert got == {t: d for t, d in lengths.items() if t != s}
        for b, n, p in res.rows:                  # each a real path of that length
            assert p["nodes"][0] == s and p["nodes"][-1] == b and len(p["relationships"]) == n
            assert all(G.has_edge(u, v) for u, v in zip(p["nodes"], p["nodes"][1:]))
        for t in (t for t in lengths if t != s):
            count = g.query(f"MATCH p = allShortestPaths((a {{key: $s}})-[*..{max_hops}]"
                            f"{arrow}(b {{key: $t}})) RETURN count(*)", {"s": s, "t": t})
            assert count.rows == [(len(list(nx.all_shortest_paths(G, s, t))),)]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 4))
def test_with_aggregates_then_filters_like_the_rows_it_groups(seed, threshold):
    g = random_store(seed)
    pairs = run_query(g, "MATCH (a)-->(b) RETURN id(a), b.v").rows
    degree, total = Counter(), Counter()
    for a, v in pairs:
        degree[a] += 1
        total[a] += v
    got = run_query(g, "MATCH (a)-->(b) WITH a, count(*) AS d, sum(b.v) AS s WHERE d > $t "
                       "RETURN id(a) AS a, d, s ORDER BY a", {"t": threshold}).rows
    assert got == sorted((a, d, total[a]) for a, d in degree.items() if d > threshold)
    distinct = run_query(g, "MATCH (a)-->(b) WITH DISTINCT b.v AS v RETURN v ORDER BY v").rows
    assert distinct == [(v,) for v in sorted({v for _, v in pairs})]
    renamed = run_query(g, "MATCH (a)-[r]->(b) WITH a AS x, r RETURN id(x), type(r)").rows
    assert Counter(renamed) == Counter(run_query(g, "MATCH (a)-[r]->(b) RETURN id(a), "
                                                    "type(r)").rows)


@pytest.mark.parametrize("text, match", [
    ("MATCH (a)-->(b) WITH a.v + 1 RETURN a", "needs a name"),
    ("MATCH (a)-->(b) WITH a AS x RETURN b", "unknown variable 'b'"),
    ("MATCH (a)-->(b) WITH a WHERE b.v > 1 RETURN a", "unknown variable 'b'"),
    ("MATCH (a)-->(b) WITH a, b AS a RETURN a", "duplicate"),
    ("MATCH (a)-->(b) WITH a WHERE count(*) > 1 RETURN a", "not allowed"),
])
def test_with_scoping_errors(text, match):
    with pytest.raises(QueryError, match=match):
        run_query(random_store(1), text)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["A", "B"]), st.integers(0, 4))
def test_optional_match_keeps_every_row_and_nulls_the_unmatched(seed, typ, threshold):
    g = random_store(seed)
    src, dst, types = g._src, g._dst, g._type
    text = (f"MATCH (a:X) OPTIONAL MATCH (a)-[:{typ}]->(b) WHERE b.v >= $t "
            "RETURN id(a), id(b)")
    got = Counter(run_query(g, text, {"t": threshold}).rows)
    expected = Counter()
    for a in range(g.num_nodes):
        if "X" not in g._labels[a]:
            continue
        hits = [dst[e] for e in range(len(src)) if src[e] == a and types[e] == typ
                and g._props[dst[e]]["v"] >= threshold]
        expected.update([(a, b) for b in hits] or [(a, None)])
    assert got == expected
    # a second OPTIONAL MATCH reading a null variable matches nothing, keeps the row
    chained = run_query(g, f"MATCH (a:X) OPTIONAL MATCH (a)-[:{typ}]->(b) WHERE b.v >= $t "
                           "OPTIONAL MATCH (b)-->(c) RETURN id(a), id(b), id(c)",
                        {"t": threshold}).rows
    assert Counter((a, b) for a, b, _ in chained).keys() == expected.keys()
    assert all(c is None for _, b, c in chained if b is None)
    counts = dict(run_query(g, f"MATCH (a:X) OPTIONAL MATCH (a)-[:{typ}]->(b) WHERE "
                               "b.v >= $t RETURN id(a), count(b)", {"t": threshold}).rows)
    assert counts == {a: sum(n for (x, b), n in expected.items() if x == a and b is not None)
                      for a, _ in expected}


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["A", "B"]), st.integers(0, 4))
def test_count_and_exists_subqueries_match_a_brute_force_count(seed, typ, threshold):
    g = random_store(seed)
    src, dst, types = g._src, g._dst, g._type
    want = {a: sum(1 for e in range(len(src)) if src[e] == a and types[e] == typ
                   and g._props[dst[e]]["v"] >= threshold) for a in range(g.num_nodes)}
    got = dict(run_query(g, f"MATCH (a) RETURN id(a), COUNT {{ (a)-[:{typ}]->(b) WHERE "
                            "b.v >= $t }", {"t": threshold}).rows)
    assert got == want
    some = run_query(g, f"MATCH (a) WHERE EXISTS {{ MATCH (a)-[:{typ}]->(b) WHERE b.v >= $t }} "
                        "RETURN id(a)", {"t": threshold}).rows
    assert sorted(r[0] for r in some) == sorted(a for a, n in want.items() if n)
    none = run_query(g, f"MATCH (a) WHERE NOT EXISTS {{ (a)-[:{typ}]->() }} RETURN count(*)")
    assert none.rows == [(sum(1 for a in range(g.num_nodes)
                              if not any(src[e] == a and types[e] == typ
                                         for e in range(len(src)))),)]
    # an outer variable left null by OPTIONAL MATCH matches nothing inside
    rows = run_query(g, "MATCH (a) OPTIONAL MATCH (a)-[:Z]->(z) RETURN COUNT { (z)--() }").rows
    assert rows == [(0,)] * g.num_nodes
    with pytest.raises(QueryError, match="unknown variable 'y'"):
        run_query(g, "MATCH (a) WHERE EXISTS { (a)--(x) WHERE y.v = 1 } RETURN a")


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 3))
def test_match_after_with_joins_on_what_with_passes_on(seed, threshold):
    g = random_store(seed)
    src, dst = g._src, g._dst
    out_degree = Counter(src)
    busy = {a for a, d in out_degree.items() if d > threshold}
    got = Counter(run_query(g, "MATCH (a)-->(b) WITH a, count(b) AS d WHERE d > $t "
                               "MATCH (a)<--(c) RETURN id(a), d, id(c)", {"t": threshold}).rows)
    expected = Counter((a, out_degree[a], src[e]) for a in busy
                       for e in range(len(src)) if dst[e] == a)
    assert got == expected
    with pytest.raises(QueryError, match="another kind"):
        run_query(g, "MATCH (a) WITH a.v AS k MATCH (k)-->(b) RETURN b")


def test_older_size_of_a_pattern_is_count_of_its_matches(people):
    for pattern in ("(a)-->()", "(a)<-[:KNOWS]-(:Person)", "(a)--(b)-->()"):
        old = people.query(f"MATCH (a) RETURN a.key, size({pattern}) ORDER BY a.key").rows
        new = people.query(f"MATCH (a) RETURN a.key, COUNT {{ {pattern} }} ORDER BY a.key").rows
        assert old == new
    assert people.query("MATCH (a {key: 'ann'}) RETURN size('(a)--()'), size([1, 2])").rows \
        == [(7, 2)]
