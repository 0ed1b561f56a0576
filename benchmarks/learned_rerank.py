"""Learned re-ranking distance: does training an AttentionDistance with InfoNCE recover a
relevance that plain inner-product search misses?

Items X (n, d) and queries q are Gaussian; relevance is ``q . x + 2 (A q) . (A x)`` for a
random rank-``rank`` matrix A (hidden), and the relevant items of q are its top 10.  The
HNSW index holds the raw vectors (inner-product metric).  The distance is fitted on training
queries (anchors = query, positives = each of its 10 relevant items, ``hard_negatives`` mined
from the index), starting from the identity (plain dot product).  On held-out queries we
report recall@10 of plain search, of search + learned re-ranking of 100 candidates, and the
ceiling (relevant items among the 100 candidates).
"""
import time

import numpy as np

from ruvector.index import AttentionDistance, AttentionReranker, VectorStore

from .timing import command


def make_data(n, dim, rank, queries, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim)).astype(np.float32)
    Q = rng.standard_normal((queries, dim)).astype(np.float32)
    A = rng.standard_normal((rank, dim)) / np.sqrt(dim)
    rel = Q @ X.T + 2.0 * (Q @ A.T) @ (A @ X.T)
    truth = np.argsort(-rel, axis=1)[:, :10]
    return X, Q, truth


def recall(found, truth):
    return float(np.mean([len(set(f.tolist()) & set(t.tolist())) / len(t)
                          for f, t in zip(found, truth)]))


def run(n=20_000, dim=32, rank=4, train_queries=1_000, test_queries=200, epochs=8,
        hard_negatives=10, candidates=100, seed=0, progress=False):
    X, Q, truth = make_data(n, dim, rank, train_queries + test_queries, seed)
    store = VectorStore(dim, "ip")
    store.add(X)
    tr, te = slice(0, train_queries), slice(train_queries, None)
    anchors = np.repeat(Q[tr], 10, axis=0)
    positives = X[truth[tr].reshape(-1)]
    dist = AttentionDistance.identity(dim)
    t0 = time.perf_counter()
    history = dist.fit(anchors, positives, store=store, hard_negatives=hard_negatives,
                       epochs=epochs, lr=3e-3, batch_size=128, temperature=1.0, seed=seed,
                       progress=progress)
    train_seconds = time.perf_counter() - t0
    plain = store.search(Q[te], 10, ef=200)
    pool = store.search(Q[te], candidates, ef=max(200, candidates))
    learned = store.search(Q[te], 10, ef=max(200, candidates), candidates=candidates,
                           rerank=AttentionReranker("learned", distance=dist, temperature=0.1))
    ceiling = float(np.mean([len(set(p.tolist()) & set(t.tolist())) / 10
                             for p, t in zip(pool.ids, truth[te])]))
    return {"n": n, "dim": dim, "rank": rank, "train_queries": train_queries,
            "test_queries": test_queries, "pairs": len(anchors), "epochs": epochs,
            "hard_negatives": hard_negatives, "candidates": candidates,
            "recall_plain": round(recall(plain.ids, truth[te]), 4),
            "recall_learned_rerank": round(recall(learned.ids, truth[te]), 4),
            "recall_ceiling": round(ceiling, 4), "train_seconds": round(train_seconds, 2),
            "loss_history": [round(h, 4) for h in history]}


def report(result):
    """The result as a table."""
    print(f"learned re-rank, {result['n']} x {result['dim']} (rank {result['rank']}), "
          f"{result['test_queries']} test queries, {result['candidates']} candidates: recall@10 "
          f"plain {result['recall_plain']}, learned {result['recall_learned_rerank']} "
          f"(ceiling {result['recall_ceiling']}), trained in {result['train_seconds']} s")


def main(argv=None):
    return command(argv, __doc__, lambda a: run(progress=True), report)


if __name__ == "__main__":
    main()
