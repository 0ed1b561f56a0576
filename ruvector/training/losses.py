"""Losses with their gradients.  Each returns ``(loss, grads...)``: the loss as a float
(mean over the counted rows) and gradients with the inputs' shapes, computed in float64
(softmaxes with the max subtracted) and returned in the inputs' float dtype."""
import numpy as np

from .._validate import as_array
from ..errors import DimensionMismatch, InvalidConfig, InvalidInput


def _float(x, name, ndim=None):
    """(float64 copy, dtype to return gradients in: the input's float dtype or float64)."""
    dt = getattr(x, "dtype", None)
    dt = np.dtype(dt) if dt in (np.float32, np.float64) else np.dtype(np.float64)
    return as_array(x, name, ndim=ndim, dtype=np.float64), dt


def _row_mask(mask, n, name="mask"):
    if mask is None:
        return np.ones(n, bool)
    m = np.asarray(mask)
    if m.dtype != bool:
        raise InvalidInput(f"{name} must be boolean, got {m.dtype}")
    if m.shape != (n,):
        raise DimensionMismatch(f"{name} has shape {m.shape}, expected ({n},)")
    if not m.any():
        raise InvalidInput(f"{name} selects no rows")
    return m


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def mse_loss(pred, target, mask=None):
    """mean over the selected rows and all columns of (pred - target)^2."""
    p, dt = _float(pred, "pred")
    t, _ = _float(target, "target")
    if p.shape != t.shape:
        raise DimensionMismatch(f"pred {p.shape} and target {t.shape} differ")
    m = _row_mask(mask, p.shape[0]) if p.ndim else None
    diff = p - t
    if m is not None:
        diff = diff * m.reshape((-1,) + (1,) * (p.ndim - 1))
    count = (m.sum() if m is not None else 1) * (np.prod(p.shape[1:]) if p.ndim else 1)
    loss = float(np.sum(diff * diff) / count)
    return loss, (2.0 * diff / count).astype(dt)


def cross_entropy(logits, labels, mask=None):
    """mean over the selected rows of -log softmax(logits)[label]; ``mask`` (N,) bool picks
    the labelled nodes (semi-supervised)."""
    z, dt = _float(logits, "logits", ndim=2)
    y = np.asarray(labels)
    if y.shape != (z.shape[0],) or y.dtype.kind not in "iu":
        raise InvalidInput(f"labels must be ({z.shape[0]},) integers, got {y.shape} {y.dtype}")
    m = _row_mask(mask, z.shape[0])
    if (y[m] < 0).any() or (y[m] >= z.shape[1]).any():
        raise InvalidInput(f"labels must lie in [0, {z.shape[1]})")
    y = np.where(m, y, 0)
    logp = _log_softmax(z)
    n = m.sum()
    rows = np.arange(z.shape[0])
    loss = float(-(logp[rows, y] * m).sum() / n)
    grad = np.exp(logp)
    grad[rows, y] -= 1.0
    grad *= m[:, None] / n
    return loss, grad.astype(dt)


def info_nce(anchors, positives, negatives=None, temperature=0.1):
    """InfoNCE (van den Oord et al. 2018) on dot products.

    In-batch (``negatives`` None): logits = A P^T / t, row i's positive is column i.
    Explicit negatives (B, K, D): logits_i = [a_i . p_i, a_i . n_ik] / t, positive first.
    Loss = mean_i -log softmax(logits_i)[positive].  Returns ``(loss, dA, dP)`` or
    ``(loss, dA, dP, dN)``.
    """
    a, dt = _float(anchors, "anchors", ndim=2)
    p, _ = _float(positives, "positives", ndim=2)
    if a.shape != p.shape:
        raise DimensionMismatch(f"anchors {a.shape} and positives {p.shape} differ")
    t = float(temperature)
    if not (t > 0 and np.isfinite(t)):
        raise InvalidConfig(f"temperature must be positive, got {temperature!r}")
    B = a.shape[0]
    if negatives is None:
        if B < 2:
            raise InvalidInput("in-batch InfoNCE needs at least 2 pairs")
        logits = a @ p.T / t
        g = np.exp(_log_softmax(logits))
        loss = float(-np.mean(np.diag(_log_softmax(logits))))
        g[np.arange(B), np.arange(B)] -= 1.0
        g /= B * t
        return loss, (g @ p).astype(dt), (g.T @ a).astype(dt)
    n, _ = _float(negatives, "negatives", ndim=3)
    if n.shape[0] != B or n.shape[2] != a.shape[1]:
        raise DimensionMismatch(f"negatives {n.shape} must be ({B}, K, {a.shape[1]})")
    cand = np.concatenate([p[:, None, :], n], axis=1)              # (B, 1+K, D)
    logits = np.einsum("bd,bkd->bk", a, cand) / t
    logp = _log_softmax(logits)
    loss = float(-np.mean(logp[:, 0]))
    g = np.exp(logp)
    g[:, 0] -= 1.0
    g /= B * t
    d_a = np.einsum("bk,bkd->bd", g, cand)
    d_cand = g[:, :, None] * a[:, None, :]
    return loss, d_a.astype(dt), d_cand[:, 0].astype(dt), d_cand[:, 1:].astype(dt)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, eps=1e-6):
    """mean_i max(0, ||a_i - p_i|| - ||a_i - n_i|| + margin), distances sqrt(sum d^2 + eps)
    (smooth at 0).  Returns ``(loss, dA, dP, dN)``."""
    a, dt = _float(anchor, "anchor", ndim=2)
    p, _ = _float(positive, "positive", ndim=2)
    n, _ = _float(negative, "negative", ndim=2)
    if not a.shape == p.shape == n.shape:
        raise DimensionMismatch(f"anchor {a.shape}, positive {p.shape}, negative {n.shape}")
    dp_vec, dn_vec = a - p, a - n
    dp = np.sqrt((dp_vec ** 2).sum(1) + eps)
    dn = np.sqrt((dn_vec ** 2).sum(1) + eps)
    hinge = dp - dn + float(margin)
    active = (hinge > 0)[:, None] / a.shape[0]
    gp, gn = dp_vec / dp[:, None] * active, dn_vec / dn[:, None] * active
    loss = float(np.maximum(hinge, 0).mean())
    return loss, (gp - gn).astype(dt), (-gp).astype(dt), gn.astype(dt)
