"""AttentionReranker: re-score HNSW candidates with attention, the exact metric or a
learned AttentionDistance."""
import numpy as np

from .._threads import run_row_chunks
from .._validate import choice
from ..errors import InvalidConfig
from .distance import AttentionDistance

MODES = ("attention", "exact", "learned")


class AttentionReranker:
    """Re-rank search candidates.

    ``mode="attention"``: weights ``w_i = softmax_i(q . x_i / (sqrt(D) * temperature))`` over
    the candidates of each query; the top k by weight come back with ``scores = w``.  In a
    cosine store q and x are unit vectors (the metric ignores norms, so does the score).
    ``mode="learned"``: the same with the similarity of an :class:`AttentionDistance`
    (``distance=``): ``w_i = softmax_i(similarity(q, x_i) / temperature)``.
    ``mode="exact"``: candidates re-sorted by the store's exact metric; ``scores = -distance``.
    ``diversity`` in [0, 1): maximal marginal relevance (Carbonell & Goldstein 1998) over the
    attention weights, ``argmax (1 - diversity) w_i / max w - diversity max_j cos(x_i, x_j)``.
    Distances returned are always the store's metric distances of the returned items.
    The dot products q . x are recovered exactly from the HNSW distances where the metric
    allows it (ip: 1 - d; cosine: 1 - d of unit vectors; l2: (|q|^2 + |x|^2 - d) / 2), so
    plain attention re-ranking reads no vector; learned and diverse modes gather the stored
    vectors inside a Numba kernel (no (Q, C, D) copy).  Queries are split over threads.
    """

    def __init__(self, mode="attention", *, temperature=1.0, distance=None, diversity=0.0):
        choice(mode, "mode", MODES)
        if mode == "learned" and not isinstance(distance, AttentionDistance):
            raise InvalidConfig("mode='learned' needs distance=AttentionDistance(...)")
        if not (isinstance(temperature, (int, float)) and np.isfinite(temperature)
                and temperature > 0):
            raise InvalidConfig(f"temperature must be a positive number, got {temperature!r}")
        if not (isinstance(diversity, (int, float)) and 0.0 <= diversity < 1.0):
            raise InvalidConfig(f"diversity must be in [0, 1), got {diversity!r}")
        self.mode = mode
        self.temperature = float(temperature)
        self.distance = distance
        self.diversity = float(diversity)

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
        if self.mode == "learned":
            if self.distance.dim != dim:
                raise InvalidConfig(f"distance dim {self.distance.dim} != store dim {dim}")
            qt, scale = self.distance.transform_queries(queries), 1.0 / self.temperature
            source = K.GATHER
        else:
            qt, scale = queries, 1.0 / (np.sqrt(dim) * self.temperature)
            if self.diversity > 0:  # MMR needs the vectors anyway
                source = K.GATHER_UNIT if metric == "cosine" else K.GATHER
            else:  # q.x follows from the search distance: no vector is read
                source = K.FROM_L2_DISTANCE if metric == "l2" else K.FROM_DOT_DISTANCE
        pos = np.empty((Q, k), np.int64)
        w = np.empty((Q, k), np.float32)
        run_row_chunks(K.rerank_attention, Q, qt, slots, dist, vectors, norms,
                       source, np.float32(scale), self.diversity, np.empty((Q, C), np.float32),
                       np.empty((Q, C), np.float32), np.empty((Q, C), np.bool_), pos, w)
        valid = pos >= 0
        safe = np.maximum(pos, 0)
        out_slots = np.where(valid, np.take_along_axis(slots, safe, 1), -1)
        out_dist = np.where(valid, np.take_along_axis(dist, safe, 1), np.inf).astype(np.float32)
        return out_slots, out_dist, w
