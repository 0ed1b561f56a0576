import threading

import numpy as np
import pyarrow as pa
import pytest

from ruvector import DimensionMismatch, InvalidConfig, InvalidInput, NotFound
from ruvector.index import AttentionDistance, AttentionReranker, VectorStore
from ruvector.index import store as store_mod
from tests.index.conftest import brute_force, recall


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_recall_against_brute_force(rng, data, metric):
    store = VectorStore(24, metric, capacity=100)  # capacity grows by itself
    ids = store.add(data)
    q = data[rng.choice(len(data), 100)] + 0.1 * rng.standard_normal((100, 24)).astype(np.float32)
    res = store.search(q, 10)
    truth, tdist = brute_force(data, ids, q, 10, metric)
    assert res.ids.shape == (100, 10) and res.ids.dtype == np.int64
    assert res.distances.dtype == np.float32
    assert np.array_equal(res.scores, -res.distances)  # plain search: score = -distance
    assert recall(res.ids, truth) >= 0.95
    exact = res.ids == truth
    np.testing.assert_allclose(res.distances[exact], tdist[exact], rtol=1e-3, atol=1e-3)


def test_single_query_and_k_capped_at_the_store_size(rng):
    store = VectorStore(4, "l2")
    store.add(rng.standard_normal((3, 4)), ids=[10, 20, 30])
    res = store.search(np.zeros(4), k=5)
    assert res.ids.shape == (3,) and sorted(res.ids) == [10, 20, 30]
    for metric in ("l2", "ip", "cosine"):  # hnswlib is never handed a huge k
        big = VectorStore(4, metric)
        big.add(rng.standard_normal((7, 4)))
        for k in (2**31, 2**62, 2**100):
            assert big.search(np.ones((2, 4)), k=k).ids.shape == (2, 7)
            got = big.search(np.ones(4), k=k, rerank="attention", candidates=2 * k)
            assert got.ids.shape == (7,) and np.isfinite(got.scores).all()
    empty = VectorStore(4).search(np.ones(4), 3)
    assert empty.ids.shape == (0,) and empty.scores.shape == (0,)


def test_ids_metadata_get_contains(rng):
    store = VectorStore(3, "l2")
    x = rng.standard_normal((3, 3)).astype(np.float32)
    ids = store.add(x, metadata=[{"lang": "en", "n": 1}, {"lang": "fr", "n": 2}, {"lang": "en"}])
    assert list(ids) == [0, 1, 2] and len(store) == 3 and 1 in store and 7 not in store
    np.testing.assert_array_equal(store.get([2, 0]), x[[2, 0]])
    meta = store.metadata([1, 2])
    assert meta.column("id").to_pylist() == [1, 2]
    assert meta.column("lang").to_pylist() == ["fr", "en"]
    assert meta.column("n").to_pylist() == [2, None]
    more = store.add(x[:1], metadata={"lang": ["de"], "extra": [True]})
    assert list(more) == [3]
    assert store.metadata([3]).column("extra").to_pylist() == [True]
    with pytest.raises(InvalidInput, match="already present"):
        store.add(x[:1], ids=[1])
    with pytest.raises(InvalidInput, match="duplicates"):
        store.add(x[:2], ids=[7, 7])
    with pytest.raises(NotFound):
        store.get([99])
    with pytest.raises(DimensionMismatch):
        store.add(x, metadata=[{"a": 1}])


def test_delete_upsert_compact(rng, data):
    store = VectorStore(24, "cosine")
    ids = store.add(data)
    q = data[:50]
    before = store.search(q, 10).ids
    gone = np.unique(before[:, :3])
    store.delete(gone)
    assert len(store) == len(data) - len(gone)
    after = store.search(q, 10).ids
    assert not np.isin(after, gone).any()
    with pytest.raises(NotFound):
        store.delete([gone[0]])
    # upsert replaces: the new vector is found, the old one is not
    target = int(ids[-1])
    store.upsert(data[0:1] * 2, [target], metadata=[{"tag": "new"}])
    assert np.allclose(store.get([target]), data[0] * 2)
    assert store.metadata([target]).column("tag").to_pylist() == ["new"]
    store.upsert(data[5:6], [123456])
    assert 123456 in store
    n = len(store)
    store.compact()
    assert len(store) == n and store._n_slots == n
    res = store.search(q, 10).ids
    assert not np.isin(res, gone).any()
    truth, _ = brute_force(store.get(store.ids), store.ids, q, 10, "cosine")
    assert recall(res, truth) >= 0.95


def test_filters_return_exactly_k_matches(rng, data):
    store = VectorStore(24, "l2")
    lang = np.where(rng.random(len(data)) < 0.5, "en", "fr").astype("U4")
    lang[:40] = "rare"
    ids = store.add(data, metadata={"lang": lang.tolist()})
    q = data[100:120]
    for flt, allowed in [({"lang": "rare"}, ids[lang == "rare"]),
                         ({"lang": "en"}, ids[lang == "en"]),
                         (set(ids[:15].tolist()), ids[:15]),
                         (lambda arr: arr % 7 == 0, ids[ids % 7 == 0]),
                         (lambda i: i % 5 == 0, ids[ids % 5 == 0])]:
        res = store.search(q, 10, filter=flt)
        assert np.isin(res.ids, allowed).all()
        assert (res.ids >= 0).all()  # at least k match: never a short answer
        truth, _ = brute_force(data[np.isin(ids, allowed)], allowed, q, 10, "l2")
        assert recall(res.ids, truth) >= 0.9
    res = store.search(q, 10, filter={"lang": "none"})
    assert (res.ids == -1).all()
    few = store.search(q, 10, filter=[1, 2, 3])
    assert (few.ids[:, 3:] == -1).all() and np.isin(few.ids[:, :3], [1, 2, 3]).all()


def _holds(row, flt):
    """A slow, independent reading of the filter language on one metadata row."""
    for key, cond in flt.items():
        if key == "$and" and not all(_holds(row, f) for f in cond):
            return False
        if key == "$or" and not any(_holds(row, f) for f in cond):
            return False
        if key in ("$and", "$or"):
            continue
        v = row.get(key)
        ops = cond if isinstance(cond, dict) else {"$eq": cond}
        for op, x in ops.items():
            if v is None:
                return False
            test = {"$eq": lambda: v == x, "$ne": lambda: v != x, "$gt": lambda: v > x,
                    "$gte": lambda: v >= x, "$lt": lambda: v < x, "$lte": lambda: v <= x,
                    "$in": lambda: v in x, "$nin": lambda: v not in x}[op]
            if not test():
                return False
    return True


def test_filter_operators_agree_with_a_row_by_row_reading(rng, data):
    store = VectorStore(24, "l2")
    n = len(data)
    rows = [{"year": int(y), "lang": str(l)} for y, l in
            zip(rng.integers(2000, 2025, n), rng.choice(["en", "fr", "de"], n))]
    for r in rows[:50]:
        del r["year"]  # nulls: never match, $ne and $nin included
    ids = store.add(data, metadata=rows)
    q = data[:5]
    filters = [{"year": {"$gte": 2020}}, {"year": {"$gt": 2005, "$lte": 2010}},
               {"year": {"$ne": 2003}}, {"lang": {"$in": ["en", "de"]}},
               {"lang": {"$nin": ["en"]}, "year": {"$lt": 2012}},
               {"$or": [{"lang": "fr"}, {"year": {"$lt": 2002}}]},
               {"$and": [{"lang": {"$ne": "en"}}, {"$or": [{"year": 2001}, {"year": 2024}]}]}]
    for flt in filters:
        allowed = ids[[_holds(r, flt) for r in rows]]
        assert len(allowed) >= 10, flt
        res = store.search(q, 10, filter=flt)
        assert np.isin(res.ids, allowed).all() and (res.ids >= 0).all(), flt
        truth, _ = brute_force(data[np.isin(ids, allowed)], allowed, q, 10, "l2")
        assert recall(res.ids, truth) >= 0.9, flt


def test_filter_mistakes_raise_instead_of_matching_nothing(rng, data):
    store = VectorStore(24, "l2")
    store.add(data[:20], metadata={"label": list(range(20))})
    q = data[:2]
    with pytest.raises(InvalidInput, match="unknown metadata column 'lable'.*'label'"):
        store.search(q, 5, filter={"lable": 3})
    with pytest.raises(InvalidInput, match=r"unknown filter operator '\$gtt'.*\$gte"):
        store.search(q, 5, filter={"label": {"$gtt": 3}})
    with pytest.raises(InvalidInput, match="does not fit the column's type int64"):
        store.search(q, 5, filter={"label": {"$gt": "three"}})
    with pytest.raises(InvalidInput, match=r"\$in takes a list"):
        store.search(q, 5, filter={"label": {"$in": 3}})
    with pytest.raises(InvalidInput, match=r"\$or takes a non-empty list"):
        store.search(q, 5, filter={"$or": []})
    bare = VectorStore(24, "l2")
    bare.add(data[:20])
    with pytest.raises(InvalidInput, match="columns: none"):
        bare.search(q, 5, filter={"label": 3})


def test_filter_through_hnsw_path(rng, data, monkeypatch):
    monkeypatch.setattr(store_mod, "BRUTE_FORCE_MAX", 10)
    monkeypatch.setattr(store_mod, "BRUTE_FORCE_SHARE", 0.0)
    store = VectorStore(24, "l2")
    store.add(data)
    res = store.search(data[:10], 10, filter=lambda a: a % 2 == 0)
    assert (res.ids % 2 == 0).all() and (res.ids >= 0).all()


@pytest.mark.parametrize("metric", ["ip", "l2", "cosine"])
@pytest.mark.parametrize("diversity", [0.0, 1e-9])  # 1e-9: the MMR selection path
def test_attention_rerank_matches_numpy_reference(rng, data, metric, diversity):
    store = VectorStore(24, metric)
    ids = store.add(data)
    q = data[:30] + 0.05
    base = store.search(q, 40)
    res = store.search(q, 5, rerank=AttentionReranker(temperature=0.5, diversity=diversity),
                       candidates=40)
    X = store.get(ids).astype(np.float64)
    agree = []
    for i in range(len(q)):
        cand = base.ids[i]
        qi = q[i].astype(np.float64)
        if metric == "cosine":  # -d / t: the cosine (minus 1) over the temperature
            logits = (X[cand] / np.linalg.norm(X[cand], axis=1, keepdims=True)) @ \
                (qi / np.linalg.norm(qi)) / 0.5
        elif metric == "ip":    # scaled dot-product attention
            logits = X[cand] @ qi / (np.sqrt(24) * 0.5)
        else:                   # -||q - x||^2 / (sqrt(D) t)
            logits = -((X[cand] - qi) ** 2).sum(axis=1) / (np.sqrt(24) * 0.5)
        w = np.exp(logits - logits.max())
        w /= w.sum()
        order = np.argsort(-w, kind="stable")[:5]
        agree.append(np.mean(res.ids[i] == cand[order]))
        np.testing.assert_allclose(res.scores[i], w[order], rtol=2e-3, atol=1e-5)
        same = res.ids[i] == cand[order]
        np.testing.assert_allclose(res.distances[i][same], base.distances[i][order][same],
                                   rtol=1e-5)
    assert np.mean(agree) >= 0.98  # only float32 near-ties may swap


def test_exact_and_learned_and_diverse_rerank(rng, data):
    store = VectorStore(24, "cosine")
    store.add(data)
    q = data[:20]
    plain = store.search(q, 10)
    exact = store.search(q, 10, rerank="exact", candidates=50)
    assert np.all(np.diff(exact.distances, axis=1) >= 0)
    np.testing.assert_allclose(exact.scores, -exact.distances)
    assert recall(exact.ids, plain.ids) >= 0.95
    # cosine store: attention uses unit vectors, so its order is the exact cosine order
    att = store.search(q, 10, rerank=AttentionReranker(temperature=0.01), candidates=50)
    np.testing.assert_array_equal(att.ids, exact.ids)
    # inner-product store: the identity learned distance is the plain dot product, i.e.
    # attention with temperature 1/sqrt(D)
    ip_store = VectorStore(24, "ip")
    ip_store.add(data)
    ident = AttentionReranker("learned", distance=AttentionDistance.identity(24))
    learned = ip_store.search(q, 10, rerank=ident, candidates=50)
    dot = ip_store.search(q, 10, rerank=AttentionReranker(temperature=1 / np.sqrt(24)),
                          candidates=50)
    np.testing.assert_array_equal(learned.ids, dot.ids)
    np.testing.assert_allclose(learned.scores, dot.scores, rtol=1e-3)
    diverse = store.search(q, 10, rerank=AttentionReranker(temperature=0.01, diversity=0.7),
                           candidates=50)
    X = store.get(store.ids)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)

    def mean_pairwise_cos(rows):
        v = Xn[rows]
        c = v @ v.T
        return (c.sum() - len(rows)) / (len(rows) * (len(rows) - 1))

    assert np.mean([mean_pairwise_cos(r) for r in diverse.ids]) < \
        np.mean([mean_pairwise_cos(r) for r in att.ids])


def test_bad_input(rng):
    store = VectorStore(4, "cosine")
    with pytest.raises(InvalidInput, match="zero"):
        store.add(np.zeros((2, 4)))
    store.add(rng.standard_normal((5, 4)))
    with pytest.raises(DimensionMismatch):
        store.search(np.ones(5))
    with pytest.raises(InvalidInput):
        store.search(np.full(4, np.nan))
    with pytest.raises(InvalidInput, match="zero"):
        store.search(np.zeros(4))
    for bad_k in (0, -1, 2.5):
        with pytest.raises(InvalidInput):
            store.search(np.ones(4), bad_k)
    with pytest.raises(InvalidInput, match="candidates"):
        store.search(np.ones(4), 5, rerank="attention", candidates=3)
    with pytest.raises(InvalidConfig):
        store.search(np.ones(4), 2, rerank="magic")
    with pytest.raises(InvalidConfig):
        VectorStore(4, "hamming")
    for bad in (dict(dim=10**20), dict(dim=8, seed="x"), dict(dim=8, seed=-1),
                dict(dim=8, M=10**9), dict(dim=8, M=1), dict(dim=8, ef_search=2**40),
                dict(dim=8, ef_construction=0), dict(dim=8, capacity=2.5)):
        with pytest.raises(InvalidConfig, match=next(iter(bad)) if len(bad) == 1
                           else list(bad)[1]):
            VectorStore(**bad)
    with pytest.raises(InvalidConfig, match="does not fit in memory"):
        VectorStore(4096, capacity=2**31 - 1)
    with pytest.raises(InvalidInput, match="ef must be an integer in"):
        store.search(np.ones(4), 2, ef=2**40)
    with pytest.raises(NotFound):
        store.delete([42])


def test_arrow_and_parquet_round_trip(rng, data, tmp_path):
    store = VectorStore(24, "l2")
    store.add(data[:200], ids=np.arange(1000, 1200), metadata={"g": list(range(200))})
    table = store.to_arrow()
    assert table.column_names == ["id", "vector", "g"]
    assert pa.types.is_fixed_size_list(table.schema.field("vector").type)
    back = VectorStore.from_arrow(table, metric="l2")
    np.testing.assert_array_equal(back.get(np.arange(1000, 1200)), data[:200])
    path = tmp_path / "v.parquet"
    store.to_parquet(path)
    again = VectorStore.from_parquet(path, metric="l2")
    np.testing.assert_array_equal(again.search(data[:5], 3).ids, store.search(data[:5], 3).ids)
    with pytest.raises(InvalidInput, match="no column"):
        VectorStore.from_arrow(pa.table({"x": [1]}))
    ragged = pa.table({"vector": pa.array([[1.0, 2.0], [1.0]])})
    with pytest.raises(InvalidInput, match="different lengths"):
        VectorStore.from_arrow(ragged)


def test_concurrent_search_while_writing(rng, data):
    store = VectorStore(24, "l2")
    store.add(data[:1000])
    errors, deleted = [], set()
    stop = threading.Event()

    def searcher():
        while not stop.is_set():
            try:
                res = store.search(data[:20], 10)
                snapshot = set(deleted)
                bad = set(res.ids.ravel().tolist()) & snapshot
                ok = (res.ids >= 0).all()
                if bad or not ok:
                    errors.append((bad, ok))
            except Exception as exc:  # noqa: BLE001 - any exception is a failure here
                errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for start in range(1000, 3000, 200):
        store.add(data[start:start + 200])
        victims = list(range(start - 1000, start - 900))
        store.delete(victims)
        deleted.update(victims)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []


def test_a_search_with_its_own_ef_does_not_change_other_searches(rng):
    # hnswlib's ef is shared by the index: low-ef searches in other threads must not lower
    # the recall of default searches running at the same time
    X = rng.standard_normal((6000, 16)).astype(np.float32)
    Q = rng.standard_normal((100, 16)).astype(np.float32)
    store = VectorStore(16, "l2", M=4, ef_construction=20, ef_search=64)
    store.add(X)
    alone = store.search(Q, 10).ids
    stop = threading.Event()

    def low_ef():
        while not stop.is_set():
            store.search(Q[:3], 10, ef=10)

    threads = [threading.Thread(target=low_ef) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        during = [store.search(Q, 10).ids for _ in range(15)]
    finally:
        stop.set()
        for t in threads:
            t.join()
    for ids in during:
        np.testing.assert_array_equal(ids, alone)


def test_threaded_rerank_equals_single_threaded(rng, data, monkeypatch):
    import ruvector._threads as threads
    store = VectorStore(24, "l2")
    store.add(data)
    q = data[:300] + 0.01
    rr = AttentionReranker(temperature=0.3)
    monkeypatch.setattr(threads, "num_workers", lambda: 3)
    many = store.search(q, 7, rerank=rr, candidates=30)
    monkeypatch.setattr(threads, "num_workers", lambda: 1)
    one = store.search(q, 7, rerank=rr, candidates=30)
    np.testing.assert_array_equal(many.ids, one.ids)
    np.testing.assert_array_equal(many.scores, one.scores)


def test_results_as_a_table_with_metadata(rng, data):
    store = VectorStore(24, "l2")
    ids = store.add(data[:30], metadata=[{"label": i % 3, "name": f"n{i}"} for i in range(30)])
    # 10 items have label 0: rows of 20 are padded
    res = store.search(data[:2], k=20, filter={"label": 0}, include=["label", "name"])
    t = res.to_arrow()
    assert t.column_names == ["query", "rank", "id", "distance", "score", "label", "name"]
    assert t.num_rows == 20  # padding left out
    by_id = {int(i): int(i) for i in ids}
    for row in t.to_pylist():
        assert row["id"] == res.ids[row["query"], row["rank"]]
        assert row["label"] == by_id[row["id"]] % 3 == 0 and row["name"] == f"n{row['id']}"
        assert row["score"] == -row["distance"]
    assert res.metadata.num_rows == 40 and res.metadata.column("label").null_count == 20
    one = store.search(data[0], k=3, include=["name"])
    assert one.to_arrow().column("query").to_pylist() == [0, 0, 0]
    assert one.to_arrow().column("name").to_pylist()[0] == "n0"
    with pytest.raises(InvalidInput, match="unknown metadata columns \\['nmae'\\]"):
        store.search(data[:2], k=3, include=["nmae"])
    with pytest.raises(InvalidInput, match="result columns"):
        store.search(data[:2], k=3, include=["id"])
    pytest.importorskip("pandas")
    df = res.to_pandas()
    assert len(df) == 20 and list(df.columns) == t.column_names


def test_metadata_of_result_ids_keeps_their_shape_and_padding(rng, data):
    store = VectorStore(24, "l2")
    store.add(data[:5], ids=[10, 11, 12, 13, 14], metadata={"x": [0, 1, 2, 3, 4]})
    res = store.search(data[:2], k=4, filter={"x": {"$lt": 2}})  # two matches: padded
    assert (res.ids[:, 2:] == -1).all()
    meta = store.metadata(res.ids)
    assert meta.num_rows == 8
    assert meta.column("id").to_pylist() == [None if i == -1 else int(i)
                                            for i in res.ids.ravel()]
    assert meta.column("x").to_pylist() == [None if i == -1 else int(i) - 10
                                           for i in res.ids.ravel()]
    assert store.metadata([12], columns=["x"]).to_pylist() == [{"id": 12, "x": 2}]
    with pytest.raises(NotFound):
        store.metadata([99])


def test_ids_out_of_range_are_refused(rng, data):
    store = VectorStore(24, "l2")
    for bad in ([-1, 2, 5], [-7], np.array([2**63], dtype=np.uint64)):
        with pytest.raises(InvalidInput, match=r"\[0, 2\*\*63 - 1\]"):
            store.add(data[:len(bad)], ids=bad)
    assert len(store) == 0
    store.add(data[:2], ids=np.array([0, 2**63 - 1], dtype=np.uint64))
    assert sorted(store.ids.tolist()) == [0, 2**63 - 1]


def test_repr_names_what_the_store_holds(data):
    store = VectorStore(24, "l2")
    store.add(data[:3], metadata={"label": [1, 2, 3]})
    assert repr(store) == ("VectorStore(dim=24, metric='l2', count=3, M=16, ef_search=64, "
                           "metadata columns=['label'])")


def test_add_with_progress_inserts_in_chunks_and_finds_the_same(rng, data, monkeypatch):
    monkeypatch.setattr(store_mod, "PROGRESS_CHUNK", 64)
    updates = []

    class Bar:
        def __init__(self, **kw):
            assert kw["total"] == len(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            updates.append(n)

    monkeypatch.setattr(store_mod, "progress_bar", Bar)
    store = VectorStore(24, "l2")
    ids = store.add(data, progress=True)
    assert sum(updates) == len(data) and len(updates) == -(-len(data) // 64)
    q = data[:50] + 0.05
    truth, _ = brute_force(data, ids, q, 10, "l2")
    assert recall(store.search(q, 10).ids, truth) >= 0.95


def test_finite_vectors_whose_distances_would_overflow_are_refused(rng):
    store = VectorStore(8, "ip")
    store.add(rng.standard_normal((10, 8)))
    with pytest.raises(InvalidInput, match="overflow float32"):
        store.search(np.full(8, 3e38))
    with pytest.raises(InvalidInput, match="overflow float32"):
        store.add(np.full(8, 1e19))
    big = np.full(8, 3.2e18)  # just under the bound: every distance stays finite
    store.add(big)
    for rerank in (None, "attention", "exact"):
        res = store.search(np.stack([big, -big]), 3, rerank=rerank)
        assert np.isfinite(res.distances).all() and np.isfinite(res.scores).all()


def test_attention_rerank_defaults_follow_the_metric(rng, data):
    import warnings
    for metric in ("l2", "ip", "cosine"):
        store = VectorStore(24, metric)
        ids = store.add(data[:500])
        res = store.search(data[:20], 10, rerank="attention", candidates=100)
        if metric != "ip":  # l2 and cosine: the query's own vector comes first
            np.testing.assert_array_equal(res.ids[:, 0], ids[:20])
        uniform = 1 / 100
        assert np.median(res.scores[:, 0]) > 1.5 * uniform  # the default discriminates
    assert AttentionReranker().temperature_for("cosine") == 0.05
    assert AttentionReranker().temperature_for("l2") == 1.0
    assert AttentionReranker(temperature=0.3).temperature_for("cosine") == 0.3
    cosine = VectorStore(24, "cosine")
    cosine.add(data[:500])
    with pytest.warns(RuntimeWarning, match="nearly uniform"):
        cosine.search(data[:5], 10, rerank=AttentionReranker(temperature=1000.0),
                      candidates=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cosine.search(data[:5], 10, rerank="attention", candidates=100)
