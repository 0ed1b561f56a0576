"""Vector index benchmark: VectorStore vs raw hnswlib (and FAISS HNSW when installed), and
search + attention re-rank vs a NumPy pipeline.

Data: 100,000 x 128 float32 from a seeded 100-cluster Gaussian mixture; 1,000 queries drawn
near the data.  Metric: squared L2, ground truth by brute force.  The re-rank stage scores
candidates by softmax(q . x / sqrt(D)) in both pipelines.
"""
import time

import hnswlib
import numba
import numpy as np

from ruvector.index import AttentionReranker, VectorStore
from ruvector import tune_malloc
from .timing import command, interleaved_medians, median_seconds

EFS = (16, 32, 64, 128, 256)


def make_data(n, dim, queries, clusters=100, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, dim), dtype=np.float32)
    X = centers[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
    Q = X[rng.integers(0, n, queries)] + 0.25 * rng.standard_normal((queries, dim), dtype=np.float32)
    return X.astype(np.float32), Q.astype(np.float32)


def ground_truth(X, Q, k, block=256):
    out = np.empty((len(Q), k), np.int64)
    sq = (X.astype(np.float64) ** 2).sum(1)
    for s in range(0, len(Q), block):
        scores = 2 * (Q[s:s + block].astype(np.float64) @ X.T) - sq  # -(|q-x|^2 - |q|^2)
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, 1), axis=1)
        out[s:s + block] = np.take_along_axis(part, order, 1)
    return out


def recall(found, truth):
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    return hits / truth.size


def numpy_rerank_pipeline(index, X, Q, k, candidates):
    """hnswlib top-candidates, then the same attention re-rank in NumPy (the baseline):
    w = softmax(-||q - x||^2 / sqrt(D)) from hnswlib's own distances (no gather needed)."""
    labels, dist = index.knn_query(Q, k=candidates, num_threads=numba.get_num_threads())
    logits = -dist.astype(np.float64) / np.sqrt(X.shape[1])
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(axis=1, keepdims=True)
    order = np.argsort(-w, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(labels, order, 1), np.take_along_axis(w, order, 1)


def run(n=100_000, dim=128, queries=1_000, k=10, candidates=100, seed=0, budget=2.0):
    threads = numba.get_num_threads()
    X, Q = make_data(n, dim, queries, seed=seed)
    malloc_tuned = tune_malloc()  # as for the PyG / PyTorch reference figures
    truth = ground_truth(X, Q, k)
    result = {"benchmark": "index", "n": n, "dim": dim, "queries": queries, "k": k,
              "threads": threads, "metric": "l2", "malloc_tuned": malloc_tuned, "results": {}}

    warm = VectorStore(dim, "l2")  # load the JIT-compiled helpers once, outside the timings
    warm.add(X[:100])
    warm.search(Q[:2], k, rerank=AttentionReranker(), candidates=20)
    def build_raw():
        index = hnswlib.Index(space="l2", dim=dim)
        index.init_index(max_elements=n, M=16, ef_construction=200, random_seed=seed)
        index.add_items(X, np.arange(n), num_threads=threads)
        return index

    def build_store():
        st = VectorStore(dim, "l2", M=16, ef_construction=200, capacity=n, seed=seed)
        st.add(X)
        return st

    builds = {"hnswlib": [], "ruvector": []}
    for _ in range(2):  # alternate, keep the best of two: build time drifts with machine load
        for name, fn in (("hnswlib", build_raw), ("ruvector", build_store)):
            t = time.perf_counter()
            built = fn()
            builds[name].append(time.perf_counter() - t)
            if name == "hnswlib":
                raw = built
            else:
                store = built
    raw_build, store_build = min(builds["hnswlib"]), min(builds["ruvector"])
    result["build_seconds"] = {"ruvector": round(store_build, 3), "hnswlib": round(raw_build, 3),
                               "ratio": round(store_build / raw_build, 3)}

    rows = {}
    for ef in EFS:
        raw.set_ef(max(ef, k))
        t_raw, t_store = interleaved_medians(
            [lambda: raw.knn_query(Q, k=k, num_threads=threads),
             lambda: store.search(Q, k, ef=ef)], budget=budget)
        labels, _ = raw.knn_query(Q, k=k, num_threads=threads)
        found = store.search(Q, k, ef=ef).ids
        rows[f"ef{ef}"] = {"ruvector_qps": round(queries / t_store), "ruvector_recall": recall(found, truth),
                           "hnswlib_qps": round(queries / t_raw), "hnswlib_recall": recall(labels, truth),
                           "qps_ratio": round(t_raw / t_store, 3)}
    result["results"]["search"] = rows

    # The baseline searches the store's own HNSW graph (slots == ids here): a second index
    # would evict this one from the caches between the alternating runs and slow whichever
    # pipeline runs next by ~15%.  hnswlib searches with max(ef, k) = candidates.
    graph = store._index
    reranker = AttentionReranker()
    t_np, t_rv, t_plain = interleaved_medians(
        [lambda: numpy_rerank_pipeline(graph, X, Q, k, candidates),
         lambda: store.search(Q, k, rerank=reranker, candidates=candidates),
         lambda: store.search(Q, candidates)], budget=budget, shuffle=True)
    np_ids, _ = numpy_rerank_pipeline(graph, X, Q, k, candidates)
    rv_ids = store.search(Q, k, rerank=reranker, candidates=candidates).ids
    cand_ids = store.search(Q, candidates).ids
    result["results"]["rerank"] = {
        "candidates": candidates, "ruvector_qps": round(queries / t_rv),
        "numpy_pipeline_qps": round(queries / t_np), "speedup": round(t_np / t_rv, 3),
        "search_only_qps": round(queries / t_plain),
        "rerank_overhead": round(t_rv / t_plain - 1, 3),
        "same_ids_as_numpy": float(np.mean(np.sort(np_ids, 1) == np.sort(rv_ids, 1))),
        "recall_ceiling_of_candidates": recall(cand_ids, truth),
        "recall_after_rerank": recall(rv_ids, truth)}
    # last: FAISS starts its own OpenMP pool, whose idle threads would disturb later timings
    result["results"]["faiss"] = _faiss(X, Q, truth, k, threads, budget)
    return result


def _faiss(X, Q, truth, k, threads, budget):
    try:
        import faiss
    except ImportError:
        return None
    faiss.omp_set_num_threads(threads)
    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(X.shape[1], 16)
    index.hnsw.efConstruction = 200
    index.add(X)
    out = {"build_seconds": round(time.perf_counter() - t, 3)}
    for ef in EFS:
        index.hnsw.efSearch = max(ef, k)
        tq = median_seconds(lambda: index.search(Q, k), budget=budget)
        _, labels = index.search(Q, k)
        out[f"ef{ef}"] = {"qps": round(len(Q) / tq), "recall": recall(labels, truth)}
    return out


def report(result):
    """The result as a table."""
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


def _options(parser):
    parser.add_argument("--n", type=int, default=100_000, help="vectors (default 100,000)")
    parser.add_argument("--queries", type=int, default=1_000)


def main(argv=None):
    return command(argv, __doc__, lambda a: run(n=a.n, queries=a.queries), report, _options)


if __name__ == "__main__":
    main()
