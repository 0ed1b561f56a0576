"""AttentionDistance: a learned similarity from attention projections."""
import json
import math
import pathlib

import numpy as np

from .._persist import write_file_atomic
from .._validate import as_array, finite_number, flag, positive_int, probability
from ..errors import DimensionMismatch, InvalidInput
from ..nn.module import Module, glorot_uniform, make_rng
from ..nn.onnx_graph import example_arrays, rows_input


class AttentionDistance(Module):
    """Learned similarity of attention (Vaswani et al. 2017) query/key projections.

        similarity(a, b) = (1/H) sum_h (u W_q^h) . (v W_k^h) / sqrt(p)
                         = u^T (W_q W_k^T) v / (H sqrt(p))
        distance(a, b)   = -similarity(a, b)

    with ``u, v = a / |a|, b / |b|`` when ``normalize`` (the default: raw features of very
    different scales, e.g. pixel counts, make the logits of training explode), else
    ``u, v = a, b``; ``W_q``, ``W_k`` of shape (dim, H p) split into H blocks of
    p = ``proj_dim`` columns (default ``dim``: a full-rank bilinear form; a smaller p is a
    low-rank metric with fewer parameters).  Parameters ``w_q``, ``w_k``; Glorot init from
    ``seed``.  :meth:`identity` builds the projections under which the similarity is the
    plain dot product a . b (``normalize=False``).

    ``pairwise(A, B)`` (n, m) caches its inputs; ``backward(grad (n, m))`` returns
    ``(dA, dB)`` and accumulates ``grads``:

        P_a = U W_q, P_b = V W_k, S = c P_a P_b^T (c = 1/(H sqrt p)),
        dW_q = c U^T G P_b,  dW_k = c V^T G^T P_a,  dU = c G P_b W_q^T,  dV = c G^T P_a W_k^T
        (normalised: dA = (dU - u (u . dU)) / |a|, row by row)
    """

    def __init__(self, dim, proj_dim=None, heads=1, seed=0, dtype=np.float32, *,
                 normalize=True):
        super().__init__(dtype)
        self.dim = positive_int(dim, "dim")
        self.proj_dim = positive_int(proj_dim if proj_dim is not None else dim, "proj_dim")
        self.heads = positive_int(heads, "heads")
        self.normalize = flag(normalize, "normalize")
        rng = make_rng(seed)
        width = self.heads * self.proj_dim
        self._register("w_q", glorot_uniform(rng, self.dim, width))
        self._register("w_k", glorot_uniform(rng, self.dim, width))
        self._cache = None

    @classmethod
    def identity(cls, dim, dtype=np.float32):
        """Projections w_q = w_k = dim^(1/4) I: similarity(a, b) == a . b exactly."""
        d = cls(dim, dim, 1, seed=0, dtype=dtype, normalize=False)
        d.w_q[...] = np.eye(dim) * dim ** 0.25
        d.w_k[...] = np.eye(dim) * dim ** 0.25
        return d

    @property
    def _c(self):
        return 1.0 / (self.heads * np.sqrt(self.proj_dim))

    def _inputs(self, a, name):
        """(rows (n, dim), their norms (n, 1) or None): unit rows when ``normalize``."""
        x = as_array(a, name, dtype=self.dtype, ndim=(1, 2))
        if x.shape[-1] != self.dim:
            raise DimensionMismatch(f"{name} {x.shape} must have width dim={self.dim}")
        x = x.reshape(-1, self.dim)
        if not self.normalize:
            return x, None
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if not norms.all():
            raise InvalidInput(f"{name} holds zero vectors, which have no direction "
                               "(normalize=True)")
        return (x / norms).astype(self.dtype, copy=False), norms

    def pairwise(self, A, B):
        """Similarity matrix (n, m) between the rows of A (n, dim) and B (m, dim)."""
        (a2, na), (b2, nb) = self._inputs(A, "A"), self._inputs(B, "B")
        pa, pb = a2 @ self.w_q, b2 @ self.w_k
        self._cache = (a2, b2, na, nb, pa, pb)
        return (pa @ pb.T) * self.dtype.type(self._c)

    forward = pairwise

    def onnx_example(self):
        rng = np.random.default_rng(0)
        return rng.standard_normal((4, self.dim)), rng.standard_normal((5, self.dim))

    def onnx_inputs(self, examples):
        """A ("rows_A0", dim) and B ("rows_B0", dim): the exported model is :meth:`pairwise`."""
        if len(examples) != 2:
            raise InvalidInput("example inputs are (A, B)")
        arrays = example_arrays(examples, ["float", "float"])
        for name, x in zip("AB", arrays):
            if x.ndim != 2:
                raise DimensionMismatch(f"{name} {x.shape} must be (rows, dim) to export")
        return [(name, rows_input(x, self.dim, name, f"rows_{name}"))
                for name, x in zip("AB", arrays)], arrays

    def emit_onnx(self, g, A, B):
        """Zero rows give NaN in the exported model (pairwise raises InvalidInput)."""
        def project(x, w):
            if self.normalize:
                x = g.op("Div", x, g.reduce("L2", x, [-1], keepdims=True))
            return g.linear(x, g.param(w, getattr(self, w)))

        s = g.op("MatMul", project(A, "w_q"), g.op("Transpose", project(B, "w_k")))
        return g.op("Mul", s, g.const(self._c))

    def similarity(self, a, b):
        """Row-wise similarity of a (n, dim) and b (n, dim) (or two vectors: a scalar)."""
        (a2, _), (b2, _) = self._inputs(a, "a"), self._inputs(b, "b")
        if a2.shape != b2.shape or np.ndim(a) != np.ndim(b):
            raise DimensionMismatch(f"a {np.shape(a)} and b {np.shape(b)} must have the same "
                                    "shape")
        s = np.einsum("ni,ni->n", a2 @ self.w_q, b2 @ self.w_k) * self._c
        s = s.astype(self.dtype, copy=False)
        return s[0] if np.ndim(a) == 1 else s

    def distance(self, a, b):
        """-similarity(a, b): smaller is closer."""
        return -self.similarity(a, b)

    def transform_queries(self, queries):
        """q~ = c W_k W_q^T u (u: the unit query when ``normalize``), so that
        similarity(q, x) = q~ . x / |x| (normalised) or q~ . x (used by re-ranking)."""
        q, _ = self._inputs(queries, "queries")
        return np.ascontiguousarray(((q @ self.w_q) @ self.w_k.T) * self._c, dtype=np.float32)

    def fit(self, anchors, positives, *, negatives=None, store=None, epochs=10, lr=1e-2,
            batch_size=64, temperature=0.1, hard_negatives=0, optimizer="adam", seed=0,
            validation=0.1, patience=3, progress=True):
        """Train the projections with InfoNCE so that similarity(anchor_i, positive_i) beats
        the other candidates; returns a :class:`FitHistory` (the mean training loss per
        epoch, a list) with ``.validation`` losses and ``.best_epoch``.

        Candidates of a batch: every positive in the batch (in-batch negatives) plus the
        negatives of every anchor in the batch — ``negatives`` (n, K, dim) given, and with
        ``store`` (a VectorStore over the same space) the ``hard_negatives`` nearest stored
        items of each anchor that are not its positive (mined once, before training).
        Loss per batch: mean_i -log softmax_j(similarity(a_i, c_j) / temperature)[i]; the
        ``temperature`` sets how sharply the softmax separates candidates (with unit inputs
        the similarity of the identity start is a cosine: 0.05-0.2 suits most data).
        ``validation``: the share of pairs held out (seeded); after every epoch their loss
        is measured, training stops when it has not improved for ``patience`` epochs, and
        the parameters of the best epoch are restored (``validation=0`` trains every epoch
        and keeps the last).  Adam (or "sgd") with learning rate ``lr``.
        """
        from .._progress import progress as progress_bar
        from ..training import SGD, Adam
        A = as_array(anchors, "anchors", dtype=self.dtype, ndim=(1, 2)).reshape(-1, self.dim)
        P = as_array(positives, "positives", dtype=self.dtype, ndim=(1, 2)).reshape(-1, self.dim)
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
        temperature = finite_number(temperature, "temperature", positive=True)
        patience = positive_int(patience, "patience")
        rng = make_rng(seed)
        train, held = _split(len(A), probability(validation, "validation"), rng)
        opt = Adam(self, lr=lr) if optimizer == "adam" else SGD(self, lr=lr, momentum=0.9)
        history = FitHistory()
        best, best_state, waited = np.inf, None, 0
        for epoch in progress_bar(range(epochs), desc="fit", enabled=progress, unit="epoch"):
            losses = [self._info_nce(A, P, N, idx, temperature, opt)
                      for idx in _batches(rng.permutation(train), batch_size, N is None)]
            history.append(float(np.mean(losses)) if losses else float("nan"))
            if not len(held):
                continue
            val = float(np.mean([self._info_nce(A, P, N, idx, temperature)
                                 for idx in _batches(held, batch_size, N is None)]))
            history.validation.append(val)
            if val < best:
                best, best_state, waited, history.best_epoch = val, self.state_dict(), 0, epoch
            else:
                waited += 1
                if waited >= patience:
                    break
        if best_state is not None:
            self.load_state_dict(best_state)
        elif not len(held):
            history.best_epoch = len(history) - 1
        self._cache = None
        return history

    def _info_nce(self, A, P, N, idx, temperature, opt=None):
        """InfoNCE loss of the anchors ``idx`` (a training step when ``opt`` is given)."""
        from ..training import cross_entropy
        cand = P[idx] if N is None else np.concatenate([P[idx], N[idx].reshape(-1, self.dim)])
        logits = self.pairwise(A[idx], cand) / temperature
        loss, d_logits = cross_entropy(logits, np.arange(len(idx)))
        if opt is not None:
            opt.zero_grad()
            self.backward(d_logits / temperature)
            opt.step()
        return loss

    def backward(self, grad):
        """Gradients (dA, dB) of the last :meth:`pairwise`; accumulates ``grads``."""
        a2, b2, na, nb, pa, pb = self._require_cache(self._cache)
        g = as_array(grad, "grad", dtype=self.dtype, ndim=2)
        if g.shape != (a2.shape[0], b2.shape[0]):
            raise DimensionMismatch(f"grad {g.shape} must be {(a2.shape[0], b2.shape[0])}")
        c = self.dtype.type(self._c)
        d_pa, d_pb = (g @ pb) * c, (g.T @ pa) * c
        self._grads["w_q"] += a2.T @ d_pa
        self._grads["w_k"] += b2.T @ d_pb
        da, db = d_pa @ self.w_q.T, d_pb @ self.w_k.T
        if self.normalize:  # through u = a / |a|
            da = (da - a2 * np.sum(da * a2, axis=1, keepdims=True)) / na
            db = (db - b2 * np.sum(db * b2, axis=1, keepdims=True)) / nb
        return da, db


class FitHistory(list):
    """Mean training loss per epoch, with ``validation`` losses and the ``best_epoch``
    whose parameters the model holds."""

    def __init__(self):
        super().__init__()
        self.validation = []
        self.best_epoch = None

    def save(self, path):
        """Write ``{"train": [...], "validation": [...], "best_epoch": i}`` as JSON (what
        ``ruvector visualize training`` draws); NaN epochs become null."""
        def finite(values):
            return [v if math.isfinite(v) else None for v in values]
        text = json.dumps({"train": finite(self), "validation": finite(self.validation),
                           "best_epoch": self.best_epoch})
        write_file_atomic(path, lambda tmp: pathlib.Path(tmp).write_text(text))


def _split(n, share, rng):
    """(train, held-out) index arrays: ``share`` of n held out (none when n is tiny)."""
    held = int(round(share * n))
    if held < 2 or n - held < 2:
        return np.arange(n), np.zeros(0, np.int64)
    order = rng.permutation(n)
    return order[held:], np.sort(order[:held])


def _batches(order, batch_size, need_two):
    """Consecutive batches of ``order``; with in-batch negatives only, a batch needs two."""
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        if len(idx) >= (2 if need_two else 1):
            yield idx


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
