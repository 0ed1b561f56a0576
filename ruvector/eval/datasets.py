"""Judged retrieval sets that ship with packages (no download at run time)."""
import numpy as np

from .._optional import require
from .._validate import integer, probability
from ..errors import InvalidInput


def digits(query_share=0.2, seed=0, limit=None):
    """scikit-learn's bundled handwritten digits (1,797 8x8 images, 64 features, 10
    classes; ``pip install "ruvector[eval]"``): ``(corpus, queries, qrels)`` with a seeded
    ``query_share`` of the images as queries and every corpus image of the query's class
    relevant (gain 1).  Corpus ids are row numbers.  ``limit`` keeps the first that many
    images (after shuffling) for quick runs."""
    data = require("sklearn.datasets", "eval", "The digits dataset").load_digits()
    probability(query_share, "query_share")
    X, y = data.data.astype(np.float32), data.target
    order = np.random.default_rng(seed).permutation(len(X))
    if limit is not None:
        order = order[:integer(limit, "limit", minimum=10, error=InvalidInput)]
    n_query = max(1, int(round(query_share * len(order))))
    q_rows, c_rows = order[:n_query], order[n_query:]
    corpus, labels = X[c_rows], y[c_rows]
    by_class = {c: {int(i): 1.0 for i in np.flatnonzero(labels == c)} for c in np.unique(y)}
    return corpus, X[q_rows], [by_class[c] for c in y[q_rows]]
