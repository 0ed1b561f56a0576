"""AttentionDistance: a learned similarity from attention projections."""
import numpy as np

from .._validate import as_array, positive_int
from ..errors import DimensionMismatch, InvalidConfig, InvalidInput
from ..nn.module import Module, glorot_uniform, make_rng


class AttentionDistance(Module):
    """Learned similarity of attention (Vaswani et al. 2017) query/key projections.

        similarity(a, b) = (1/H) sum_h (a W_q^h) . (b W_k^h) / sqrt(p)
                         = a^T (W_q W_k^T) b / (H sqrt(p))
        distance(a, b)   = -similarity(a, b)

    with ``W_q``, ``W_k`` of shape (dim, H p) split into H blocks of p = ``proj_dim``
    columns (default ``dim``).  Parameters ``w_q``, ``w_k``; Glorot init from ``seed``.
    :meth:`identity` builds the projections under which the similarity is the plain dot
    product a . b.

    ``pairwise(A, B)`` (n, m) caches its inputs; ``backward(grad (n, m))`` returns
    ``(dA, dB)`` and accumulates ``grads``:

        P_a = A W_q, P_b = B W_k, S = c P_a P_b^T (c = 1/(H sqrt p)),
        dW_q = c A^T G P_b,  dW_k = c B^T G^T P_a,  dA = c G P_b W_q^T,  dB = c G^T P_a W_k^T
    """

    def __init__(self, dim, proj_dim=None, heads=1, seed=0, dtype=np.float32):
        super().__init__(dtype)
        self.dim = positive_int(dim, "dim")
        self.proj_dim = positive_int(proj_dim if proj_dim is not None else dim, "proj_dim")
        self.heads = positive_int(heads, "heads")
        rng = make_rng(seed)
        width = self.heads * self.proj_dim
        self._register("w_q", glorot_uniform(rng, self.dim, width))
        self._register("w_k", glorot_uniform(rng, self.dim, width))
        self._cache = None

    @classmethod
    def identity(cls, dim, dtype=np.float32):
        """Projections w_q = w_k = dim^(1/4) I: similarity(a, b) == a . b exactly."""
        d = cls(dim, dim, 1, seed=0, dtype=dtype)
        d.w_q[...] = np.eye(dim) * dim ** 0.25
        d.w_k[...] = np.eye(dim) * dim ** 0.25
        return d

    @property
    def _c(self):
        return 1.0 / (self.heads * np.sqrt(self.proj_dim))

    def _inputs(self, a, name):
        x = as_array(a, name, dtype=self.dtype, ndim=(1, 2))
        if x.shape[-1] != self.dim:
            raise DimensionMismatch(f"{name} {x.shape} must have width dim={self.dim}")
        return x

    def pairwise(self, A, B):
        """Similarity matrix (n, m) between the rows of A (n, dim) and B (m, dim)."""
        a2 = self._inputs(A, "A").reshape(-1, self.dim)
        b2 = self._inputs(B, "B").reshape(-1, self.dim)
        pa, pb = a2 @ self.w_q, b2 @ self.w_k
        self._cache = (a2, b2, pa, pb)
        return (pa @ pb.T) * self.dtype.type(self._c)

    forward = pairwise

    def similarity(self, a, b):
        """Row-wise similarity of a (n, dim) and b (n, dim) (or two vectors: a scalar)."""
        a2, b2 = self._inputs(a, "a"), self._inputs(b, "b")
        if a2.shape != b2.shape:
            raise DimensionMismatch(f"a {a2.shape} and b {b2.shape} must have the same shape")
        s = np.einsum("...i,...i->...", a2 @ self.w_q, b2 @ self.w_k) * self._c
        return s.astype(self.dtype, copy=False)

    def distance(self, a, b):
        """-similarity(a, b): smaller is closer."""
        return -self.similarity(a, b)

    def transform_queries(self, queries):
        """q~ = c W_k W_q^T q, so that similarity(q, x) = q~ . x (used by re-ranking)."""
        q = self._inputs(queries, "queries").reshape(-1, self.dim)
        return np.ascontiguousarray(((q @ self.w_q) @ self.w_k.T) * self._c, dtype=np.float32)

    def fit(self, anchors, positives, *, negatives=None, store=None, epochs=10, lr=1e-2,
            batch_size=64, temperature=0.1, hard_negatives=0, optimizer="adam", seed=0,
            progress=True):
        """Train the projections with InfoNCE so that similarity(anchor_i, positive_i) beats
        the other candidates; returns the mean loss per epoch.

        Candidates of a batch: every positive in the batch (in-batch negatives) plus the
        negatives of every anchor in the batch — ``negatives`` (n, K, dim) given, and with
        ``store`` (a VectorStore over the same space) the ``hard_negatives`` nearest stored
        items of each anchor that are not its positive (mined once, before training).
        Loss per batch: mean_i -log softmax_j(similarity(a_i, c_j) / temperature)[i].
        Adam (or "sgd") with learning rate ``lr``; batches shuffled by ``seed``.
        """
        from .._progress import progress as progress_bar
        from ..training import SGD, Adam, cross_entropy
        A = self._inputs(anchors, "anchors").reshape(-1, self.dim)
        P = self._inputs(positives, "positives").reshape(-1, self.dim)
        if A.shape != P.shape:
            raise DimensionMismatch(f"anchors {A.shape} and positives {P.shape} differ")
        N = None if negatives is None else \
            as_array(negatives, "negatives", dtype=self.dtype, ndim=3)
        if N is not None and (N.shape[0] != len(A) or N.shape[2] != self.dim):
            raise DimensionMismatch(f"negatives {N.shape} must be ({len(A)}, K, {self.dim})")
        if store is not None and int(hard_negatives) > 0:
            hard = _mine_hard_negatives(store, A, P, int(hard_negatives))
            N = hard if N is None else np.concatenate([N, hard], axis=1)
        epochs, batch_size = positive_int(epochs, "epochs"), positive_int(batch_size, "batch_size")
        if not (temperature > 0):
            raise InvalidConfig(f"temperature must be positive, got {temperature!r}")
        opt = Adam(self, lr=lr) if optimizer == "adam" else SGD(self, lr=lr, momentum=0.9)
        rng = make_rng(seed)
        history = []
        for _ in progress_bar(range(epochs), desc="fit", enabled=progress, unit="epoch"):
            order = rng.permutation(len(A))
            losses = []
            for start in range(0, len(A), batch_size):
                idx = order[start:start + batch_size]
                if len(idx) < 2 and N is None:
                    continue
                cand = P[idx] if N is None else np.concatenate([P[idx], N[idx].reshape(-1, self.dim)])
                opt.zero_grad()
                logits = self.pairwise(A[idx], cand) / temperature
                loss, d_logits = cross_entropy(logits, np.arange(len(idx)))
                self.backward(d_logits / temperature)
                opt.step()
                losses.append(loss)
            history.append(float(np.mean(losses)) if losses else float("nan"))
        self._cache = None
        return history

    def backward(self, grad):
        """Gradients (dA, dB) of the last :meth:`pairwise`; accumulates ``grads``."""
        a2, b2, pa, pb = self._require_cache(self._cache)
        g = as_array(grad, "grad", dtype=self.dtype, ndim=2)
        if g.shape != (a2.shape[0], b2.shape[0]):
            raise DimensionMismatch(f"grad {g.shape} must be {(a2.shape[0], b2.shape[0])}")
        c = self.dtype.type(self._c)
        d_pa, d_pb = (g @ pb) * c, (g.T @ pa) * c
        self._grads["w_q"] += a2.T @ d_pa
        self._grads["w_k"] += b2.T @ d_pb
        return d_pa @ self.w_q.T, d_pb @ self.w_k.T


def _mine_hard_negatives(store, anchors, positives, k):
    """(n, k, dim): the k stored items nearest each anchor, skipping its positive (any item
    within 1e-6 relative distance of it)."""
    res = store.search(anchors, k + 1)
    out = np.empty((len(anchors), k, anchors.shape[1]), anchors.dtype)
    for i, ids in enumerate(res.ids):
        vecs = store.get(ids[ids >= 0])
        same = np.linalg.norm(vecs - positives[i], axis=1) <= 1e-6 * (
            np.linalg.norm(positives[i]) + 1e-12)
        vecs = vecs[~same][:k]
        if len(vecs) < k:
            raise InvalidInput(f"the store holds fewer than {k} negatives for anchor {i}")
        out[i] = vecs
    return out
