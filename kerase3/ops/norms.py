"""Norms with finite values and gradients at zero (zero-length and padding edges, zero irreps)."""

from keras import ops

from .layout import split_blocks

__all__ = ["safe_sqrt", "safe_norm", "irrep_norms"]


def safe_sqrt(x):
    """``sqrt(x)`` for ``x >= 0``, with value 0 and gradient 0 (not inf/NaN) where ``x == 0``.

    Example:
        >>> import numpy as np
        >>> np.asarray(safe_sqrt(np.array([0.0, 4.0]))).tolist()
        [0.0, 2.0]
    """
    x = ops.convert_to_tensor(x)
    positive = x > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, x, ops.ones_like(x))), ops.zeros_like(x))


def safe_norm(x, axis=-1, keepdims=False):
    """Euclidean norm along ``axis`` by `safe_sqrt`: zero vectors give 0 with finite gradients."""
    return safe_sqrt(ops.sum(ops.square(x), axis=axis, keepdims=keepdims))


def irrep_norms(x, irreps, squared=False):
    """``[..., num_irreps]``: the (squared) norm of every irrep copy of ``x [..., irreps.dim]``, in order."""
    parts = []
    for b, (mul, ir) in zip(split_blocks(x, irreps), irreps):
        if mul == 0:
            continue
        b = ops.reshape(b, ops.shape(x)[:-1] + (mul, ir.dim))
        parts.append(ops.sum(ops.square(b), axis=-1))
    sq = ops.concatenate(parts, axis=-1) if len(parts) > 1 else (parts[0] if parts else x[..., :0])
    return sq if squared else safe_sqrt(sq)
