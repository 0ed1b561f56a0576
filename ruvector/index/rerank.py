"""AttentionReranker: re-score HNSW candidates with attention, the exact metric or a
learned AttentionDistance."""
import warnings

import numpy as np

from .._threads import run_row_chunks
from .._validate import choice, finite_number
from ..errors import InvalidConfig
from .distance import AttentionDistance

MODES = ("attention", "exact", "learned")
DEFAULT_TEMPERATURE = {"cosine": 0.05, "ip": 1.0, "l2": 1.0}
FLAT = 1.05  # weights whose largest is below FLAT / (valid candidates) count as uniform


class AttentionReranker:
    """Re-rank search candidates.

    ``mode="attention"``: weights ``w_i = softmax_i(-d(q, x_i) / tau)`` over the candidates
    of each query, with ``d`` the store's own distance (so the order is the metric's: in an
    l2 store the query's own vector comes first) and ``tau = temperature * s``: ``s = 1`` for
    cosine (``-d`` is the cosine minus 1), ``s = sqrt(D)`` for ip (scaled dot-product
    attention: ``-d / sqrt(D)`` is ``q . x / sqrt(D)`` up to a constant) and l2
    (``-||q - x||^2 / sqrt(D)``).  The top k by weight come back with ``scores = w``.
    ``temperature=None`` picks the default of the store's metric: 0.05 for cosine (cosines
    of near candidates differ by a few hundredths), 1 for ip and l2.
    ``mode="learned"``: the same with the similarity of an :class:`AttentionDistance`
    (``distance=``): ``w_i = softmax_i(similarity(q, x_i) / temperature)`` (default 1).
    ``mode="exact"``: candidates re-sorted by the store's exact metric; ``scores = -distance``.
    ``diversity`` in [0, 1): maximal marginal relevance (Carbonell & Goldstein 1998) over the
    attention weights, ``argmax (1 - diversity) w_i / max w - diversity max_j cos(x_i, x_j)``.
    Distances returned are always the store's metric distances of the returned items.
    Plain attention reads no vector (the logits are the search distances); learned and
    diverse modes gather the stored vectors inside a Numba kernel (no (Q, C, D) copy).
    Queries are split over threads.  Weights within 5% of uniform (a temperature too high
    for the data) raise a RuntimeWarning.
    """

    def __init__(self, mode="attention", *, temperature=None, distance=None, diversity=0.0):
        choice(mode, "mode", MODES)
        if mode == "learned" and not isinstance(distance, AttentionDistance):
            raise InvalidConfig("mode='learned' needs distance=AttentionDistance(...)")
        if temperature is not None:
            temperature = finite_number(temperature, "temperature", positive=True)
        if not (isinstance(diversity, (int, float)) and 0.0 <= diversity < 1.0):
            raise InvalidConfig(f"diversity must be in [0, 1), got {diversity!r}")
        self.mode = mode
        self.temperature = temperature
        self.distance = distance
        self.diversity = float(diversity)

    def temperature_for(self, metric):
        """The temperature used on a store of ``metric`` (the default when None)."""
        if self.temperature is not None:
            return self.temperature
        return 1.0 if self.mode == "learned" else DEFAULT_TEMPERATURE[metric]

    @classmethod
    def resolve(cls, rerank):
        """None, a mode name, or an AttentionReranker -> AttentionReranker or None."""
        if rerank is None or isinstance(rerank, cls):
            return rerank
        if isinstance(rerank, str):
            return cls(rerank)
        raise InvalidConfig(f"rerank must be None, a mode name {MODES} or an "
                            f"AttentionReranker, got {type(rerank).__name__}")

    def rerank(self, queries, slots, dist, k, vectors, norms, metric):
        """(slots (Q, k), distances (Q, k), scores (Q, k)) from candidate slots (Q, C) with
        their search distances (Q, C), for queries (Q, D) against the stored ``vectors``
        (N, D) float32 with their ``norms`` (N,) under ``metric``."""
        from ..kernels import rerank as K
        from ..kernels.metric import exact_top_k
        Q, C = slots.shape
        dim = vectors.shape[1]
        if self.mode == "exact":
            out_slots, d_k = exact_top_k(queries, slots, vectors, norms, metric, min(k, C))
            return out_slots, d_k, np.where(np.isfinite(d_k), -d_k, 0)
        t = self.temperature_for(metric)
        if self.mode == "learned":
            if self.distance.dim != dim:
                raise InvalidConfig(f"distance dim {self.distance.dim} != store dim {dim}")
            qt, scale = self.distance.transform_queries(queries), 1.0 / t
            source = K.GATHER_UNIT if self.distance.normalize else K.GATHER
        else:  # -d(q, x) / tau from the search distances: no vector is read
            tau = t * (1.0 if metric == "cosine" else np.sqrt(dim))
            qt, scale, source = queries, 1.0 / tau, K.FROM_DISTANCE
        pos = np.empty((Q, k), np.int64)
        w = np.empty((Q, k), np.float32)
        run_row_chunks(K.rerank_attention, Q, qt, slots, dist, vectors, norms,
                       source, np.float32(scale), self.diversity, np.empty((Q, C), np.float32),
                       np.empty((Q, C), np.float32), np.empty((Q, C), np.bool_), pos, w)
        _warn_if_flat(w, (slots >= 0).sum(axis=1), t)
        valid = pos >= 0
        safe = np.maximum(pos, 0)
        out_slots = np.where(valid, np.take_along_axis(slots, safe, 1), -1)
        out_dist = np.where(valid, np.take_along_axis(dist, safe, 1), np.inf).astype(np.float32)
        return out_slots, out_dist, w


def _warn_if_flat(w, n_valid, temperature):
    """RuntimeWarning when, for most queries, the largest weight is within 5% of uniform."""
    many = n_valid > 1
    if not many.any():
        return
    ratio = np.median(w[many].max(axis=1) * n_valid[many])
    if ratio < FLAT:
        warnings.warn(f"attention re-rank weights are nearly uniform (the largest is "
                      f"{ratio:.3f} x uniform at temperature {temperature:g}): lower the "
                      "temperature for scores that discriminate", RuntimeWarning, stacklevel=4)
