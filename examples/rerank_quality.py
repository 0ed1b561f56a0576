"""Retrieval quality of plain HNSW search and each re-ranker on scikit-learn's digits: the
README table "Retrieval quality on real data" (mean and standard deviation over seeds).

    python examples/rerank_quality.py           # 5 seeds, as in README
"""
import sys

import numpy as np

from ruvector.eval import digits, evaluate

COLUMNS = ("recall@10", "ndcg@10", "mrr", "ms_per_query")


def run(seeds=range(5), limit=None, out=print):
    """{method: {column: (mean, std)}} over the seeds; prints the table through ``out``."""
    per_method = {}
    for seed in seeds:
        corpus, queries, qrels = digits(seed=seed, limit=limit)
        for row in evaluate(corpus, queries, qrels, seed=seed).rows:
            per_method.setdefault(row["method"], []).append(row)
    summary = {}
    out(f"{'method':<10} " + " ".join(f"{c:>17}" for c in COLUMNS))
    for method, rows in per_method.items():
        summary[method] = {c: (float(np.mean([r[c] for r in rows])),
                               float(np.std([r[c] for r in rows])))
                           for c in COLUMNS if rows[0][c] is not None}
        cells = [f"{summary[method][c][0]:8.3f} ± {summary[method][c][1]:6.3f}"
                 if c in summary[method] else f"{'—':>17}" for c in COLUMNS]
        out(f"{method:<10} " + " ".join(cells))
    return summary


if __name__ == "__main__":
    run(range(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
