"""``ruvector demo``: build a vector store on built-in data and query it, with and without
attention re-ranking, reporting recall against brute force and timings."""
import time

import numpy as np

from .index import AttentionReranker, VectorStore


def make_dataset(n=20_000, dim=64, clusters=50, queries=500, seed=0):
    """Deterministic Gaussian-mixture vectors and noisy queries drawn near them."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim)).astype(np.float32) * 2.0
    labels = rng.integers(0, clusters, n)
    X = centers[labels] + rng.standard_normal((n, dim), dtype=np.float32)
    picks = rng.integers(0, n, queries)
    Q = X[picks] + 0.5 * rng.standard_normal((queries, dim), dtype=np.float32)
    return X, Q, labels


def _recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def run_demo(out=print, n=20_000, dim=64, queries=500, k=10):
    X, Q, labels = make_dataset(n, dim, queries=queries)
    out(f"ruvector demo: {n} vectors x {dim} (50-cluster Gaussian mixture), {queries} queries, k={k}")
    t0 = time.perf_counter()
    store = VectorStore(dim, "cosine")
    store.add(X, metadata={"cluster": labels.tolist()})
    build = time.perf_counter() - t0
    out(f"  build           {build:7.2f} s   ({n / build:,.0f} vectors/s)")

    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    truth = np.argsort(-(Qn @ Xn.T), axis=1)[:, :k]

    def timed(label, **kwargs):
        store.search(Q[:8], k, **kwargs)  # warm-up (compiles kernels on first use)
        t = time.perf_counter()
        res = store.search(Q, k, **kwargs)
        dt = time.perf_counter() - t
        out(f"  {label:15} recall@{k} {_recall(res.ids, truth):.3f}   {queries / dt:9,.0f} QPS")
        return res

    timed("hnsw")
    att = timed("+ attention", rerank=AttentionReranker(temperature=0.05), candidates=100)
    timed("+ exact rerank", rerank="exact", candidates=100)
    div = timed("+ diverse (MMR)", rerank=AttentionReranker(temperature=0.05, diversity=0.5),
                candidates=100)
    flt = store.search(Q, k, filter={"cluster": 3})
    ok = np.isin(flt.ids, np.flatnonzero(labels == 3)).all()
    out(f"  filter cluster=3: all {flt.ids.size} results match: {bool(ok)}")
    top = att.ids[0][:5].tolist()
    weights = ", ".join(f"{w:.4f}" for w in att.scores[0][:5])
    out(f"  query 0: attention top-5 ids {top}, weights [{weights}]")
    out(f"  query 0: diverse top-5 ids  {div.ids[0][:5].tolist()}")
    return store
