"""``evaluate``: retrieval quality of plain HNSW and each re-ranker on judged queries."""
import json
import time

import numpy as np

from .._validate import as_array, choice, integer, probability
from ..errors import DimensionMismatch, InvalidInput
from ..index import AttentionDistance, AttentionReranker, VectorStore
from .metrics import ndcg_at_k, recall_at_k, reciprocal_rank

METHODS = ("hnsw", "exact", "attention", "mmr", "learned")
MAX_PAIRS_PER_QUERY = 10  # training pairs of the learned distance per train query
TEMPERATURES = (0.05, 0.1, 0.2)  # InfoNCE temperatures tried, chosen on validation queries


class EvalReport:
    """One row per method: ``recall@k``, ``ndcg@10``, ``mrr`` (means over the held-out
    queries that have a relevant item), ``ms_per_query`` and ``ceiling_share`` (recall@k
    over that of the ``ceiling`` row: the capped recall@k of the candidate set itself, what
    a perfect re-ranker of it would reach)."""

    def __init__(self, rows, info):
        self.rows, self.info = rows, info

    def row(self, method):
        return next(r for r in self.rows if r["method"] == method)

    def to_dict(self):
        return {"info": self.info, "results": self.rows}

    def to_json(self):
        return json.dumps(self.to_dict())

    def table(self):
        k = self.info["k"]
        head = f"{'method':<10} {f'recall@{k}':>10} {'ndcg@10':>8} {'mrr':>7} {'ms/query':>9}"
        lines = [head]
        for r in self.rows:
            cells = [f"{r[name]:>{w}.4f}" if r.get(name) is not None else f"{'':>{w}}"
                     for name, w in ((f"recall@{k}", 10), ("ndcg@10", 8), ("mrr", 7))]
            ms = f"{r['ms_per_query']:9.3f}" if r.get("ms_per_query") is not None else ""
            lines.append(f"{r['method']:<10} " + " ".join(cells) + f" {ms}")
        return "\n".join(lines)


def evaluate(corpus, queries, qrels, *, methods=METHODS, metric="cosine", k=10,
             candidates=100, diversity=0.3, test_share=0.5, seed=0, ids=None,
             fit_options=None):
    """Search the held-out queries in an HNSW store of ``corpus`` with each method and
    score the rankings against ``qrels`` (one ``{corpus id: gain}`` dict per query row).

    Methods: ``hnsw`` (plain search), ``exact`` / ``attention`` (re-rank of ``candidates``
    HNSW results by the exact metric / attention weights), ``mmr`` (attention with
    ``diversity``), ``learned`` (an AttentionDistance started at the store's similarity and
    trained with InfoNCE on the other queries, each paired with up to 10 of its relevant
    items, in-batch negatives; its temperature, or no training at all, chosen by nDCG@10 on a
    quarter of those queries, see ``report.info["learned"]``; ``fit_options`` go to
    ``fit``).  ``test_share`` of the queries (seeded) are the held-out ones every method is
    scored on.  Returns an :class:`EvalReport`.
    """
    X = as_array(corpus, "corpus", ndim=2)
    Q = as_array(queries, "queries", ndim=2)
    if X.shape[1] != Q.shape[1]:
        raise DimensionMismatch(f"corpus {X.shape} and queries {Q.shape} differ in width")
    if len(qrels) != len(Q):
        raise DimensionMismatch(f"{len(qrels)} qrels entries for {len(Q)} queries")
    methods = list(methods)
    for m in methods:
        choice(m, "method", METHODS, error=InvalidInput)
    k = integer(k, "k", minimum=1, error=InvalidInput)
    candidates = integer(candidates, "candidates", minimum=max(k, 10), error=InvalidInput)
    test_share = probability(test_share, "test_share")
    order = np.random.default_rng(seed).permutation(len(Q))
    n_test = max(1, int(round(test_share * len(Q))))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    if "learned" in methods and len(train) < 2:
        raise InvalidInput("the learned distance needs at least 2 training queries: "
                           "lower test_share")
    store = VectorStore(X.shape[1], metric)
    store.add(X, ids)
    test_qrels = [qrels[i] for i in test]
    depth = max(k, 10)
    rerankers = {"hnsw": None, "exact": "exact", "attention": "attention",
                 "mmr": AttentionReranker(diversity=diversity)}
    selection = None
    if "learned" in methods:
        distance, selection = _learned_distance(store, X, Q, qrels, train, seed,
                                                fit_options or {}, metric, candidates)
        rerankers["learned"] = _learned_reranker(distance)
    rows = [_ceiling(store.search(Q[test], candidates).ids, test_qrels, k)]
    for m in methods:
        extra = {} if rerankers[m] is None else {"rerank": rerankers[m],
                                                 "candidates": candidates}
        store.search(Q[test[:1]], depth, **extra)   # compiles its kernels outside the timing
        t0 = time.perf_counter()
        found = store.search(Q[test], depth, **extra).ids
        ms = (time.perf_counter() - t0) * 1e3 / len(test)
        rows.append(_scores(m, found, test_qrels, k, ms))
    info = {"corpus": int(X.shape[0]), "dim": int(X.shape[1]), "metric": metric,
            "queries_test": int(len(test)), "queries_train": int(len(train)), "k": k,
            "candidates": candidates, "seed": seed}
    if selection is not None:
        info["learned"] = selection
    ceiling = rows[0][f"recall@{k}"]
    for row in rows[1:]:
        row["ceiling_share"] = row[f"recall@{k}"] / ceiling if ceiling else None
    return EvalReport(rows, info)


def _scores(method, ranked, qrels, k, ms):
    """A report row of a method's rankings."""
    return {"method": method, f"recall@{k}": float(np.nanmean(recall_at_k(ranked, qrels, k))),
            "ndcg@10": float(np.nanmean(ndcg_at_k(ranked, qrels, 10))),
            "mrr": float(np.nanmean(reciprocal_rank(ranked, qrels))),
            "ms_per_query": round(ms, 4)}


def _ceiling(candidates, qrels, k):
    """The ceiling row: recall@k of the candidate lists with their relevant items first,
    what a perfect re-ranker reaches (no ranking metrics of its own)."""
    ideal = [sorted(row, key=lambda d, judged=judged: judged.get(d, 0) <= 0)
             for row, judged in zip(candidates, qrels)]
    return {"method": "ceiling", f"recall@{k}": float(np.nanmean(recall_at_k(ideal, qrels, k))),
            "ndcg@10": None, "mrr": None, "ms_per_query": None}


def _pairs(store, X, Q, qrels, queries, rng):
    """(anchors, positives): each query with up to MAX_PAIRS_PER_QUERY relevant items."""
    row_of = {int(i): r for r, i in enumerate(store.ids)}
    anchors, positives = [], []
    for qi in queries:
        rel = [d for d, g in qrels[qi].items() if g > 0 and d in row_of]
        if len(rel) > MAX_PAIRS_PER_QUERY:
            rel = list(rng.choice(rel, MAX_PAIRS_PER_QUERY, replace=False))
        for d in rel:
            anchors.append(Q[qi])
            positives.append(X[row_of[int(d)]])
    return np.array(anchors).reshape(-1, X.shape[1]), np.array(positives).reshape(-1, X.shape[1])


def _learned_reranker(distance):
    # The start's similarity is a cosine (or a dot product): a softmax at 0.05 keeps its
    # weights apart; the order, which the metrics score, does not depend on it.
    return AttentionReranker("learned", distance=distance, temperature=min(TEMPERATURES))


def _start(dim, metric):
    """The untrained distance: the store's cosine (or, for l2 / ip, the dot product)."""
    distance = AttentionDistance(dim, dim, 1, seed=0, normalize=metric == "cosine")
    distance.w_q[...] = distance.w_k[...] = np.eye(dim) * dim ** 0.25
    return distance


def _learned_distance(store, X, Q, qrels, train, seed, fit_options, metric, candidates):
    """(distance, selection info): the untrained start and one InfoNCE fit per temperature
    in TEMPERATURES, on the pairs of three quarters of the training queries, scored by
    nDCG@10 of their re-ranking on the other quarter; the best of them (the start itself
    when no fit beats it)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(train)
    n_val = max(1, len(train) // 4)
    val, fit = np.sort(order[:n_val]), np.sort(order[n_val:])
    anchors, positives = _pairs(store, X, Q, qrels, fit, rng)
    if len(anchors) < 2:
        raise InvalidInput("the training queries have fewer than 2 relevant corpus items")
    val_qrels = [qrels[i] for i in val]

    def score(distance):
        found = store.search(Q[val], 10, candidates=candidates,
                             rerank=_learned_reranker(distance)).ids
        return float(np.nanmean(ndcg_at_k(found, val_qrels, 10)))

    best = _start(X.shape[1], metric)
    best_score, chosen = score(best), None
    tried = {"start": best_score}
    for temperature in TEMPERATURES:
        distance = _start(X.shape[1], metric)
        options = {"epochs": 20, "lr": 1e-3, "progress": False, "seed": seed,
                   "temperature": temperature, **fit_options}
        distance.fit(anchors, positives, **options)
        tried[f"temperature {temperature}"] = value = score(distance)
        if value > best_score:
            best, best_score, chosen = distance, value, temperature
    return best, {"validation_queries": int(len(val)), "validation_ndcg@10": tried,
                  "chosen_temperature": chosen}
