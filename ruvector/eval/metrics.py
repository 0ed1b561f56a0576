"""Ranking metrics over ranked id lists and relevance judgements (qrels).

``ranked``: (Q, n) int64 ids per query, best first, -1 padding; ``qrels``: one dict per
query, ``{id: gain}`` with gain > 0 for a relevant item.  Each function returns the
per-query values (NaN for a query without relevant items, which means leave out, as
trec_eval does); average them with ``np.nanmean``.
"""
import numpy as np


def _relevant(judged):
    return {d: g for d, g in judged.items() if g > 0}


def recall_at_k(ranked, qrels, k):
    """|top k ∩ relevant| / min(k, |relevant|): 1 when the first k hold as many relevant
    items as there can be (capped recall; plain recall when |relevant| <= k)."""
    out = np.full(len(qrels), np.nan)
    for i, judged in enumerate(qrels):
        rel = _relevant(judged)
        if rel:
            out[i] = sum(1 for d in ranked[i][:k] if d in rel) / min(k, len(rel))
    return out


def ndcg_at_k(ranked, qrels, k=10):
    """DCG@k / ideal DCG@k with linear gains: DCG = sum_{r=1..k} gain_r / log2(r + 1)
    (trec_eval's ndcg_cut)."""
    out = np.full(len(qrels), np.nan)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    for i, judged in enumerate(qrels):
        rel = _relevant(judged)
        if not rel:
            continue
        gains = np.array([rel.get(d, 0.0) for d in ranked[i][:k]], dtype=np.float64)
        ideal = np.sort(np.fromiter(rel.values(), np.float64))[::-1][:k]
        out[i] = (gains @ discount[:len(gains)]) / (ideal @ discount[:len(ideal)])
    return out


def reciprocal_rank(ranked, qrels):
    """1 / the rank of the first relevant item in the list (0 when none is in it)."""
    out = np.full(len(qrels), np.nan)
    for i, judged in enumerate(qrels):
        rel = _relevant(judged)
        if rel:
            hit = next((r for r, d in enumerate(ranked[i], 1) if d in rel), None)
            out[i] = 0.0 if hit is None else 1.0 / hit
    return out
