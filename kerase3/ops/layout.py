"""Moving features between e3nn's "mul_ir" layout and the "ir_mul" layout used inside.

At every layer boundary features are ``[..., irreps.dim]`` with each block
``[mul, 2l+1]`` flattened (mul_ir). Inside, each block is ``[Z, 2l+1, mul]``: channels
innermost, so that Clebsch-Gordan sums are elementwise over channels and channel
mixing is one large matrix product.
"""

import keras
import numpy as np
from keras import ops

from .. import backend


def float_tensor(x, like=None):
    """``x`` as a tensor; integer or bool inputs are cast to ``like``'s float dtype (default: ``floatx``),
    so that Clebsch-Gordan constants and weights are never cast to integers."""
    x = ops.convert_to_tensor(x)
    if "float" not in keras.backend.standardize_dtype(x.dtype):
        like_dtype = None if like is None else keras.backend.standardize_dtype(ops.convert_to_tensor(like).dtype)
        x = ops.cast(x, like_dtype if like_dtype is not None and "float" in like_dtype else keras.config.floatx())
    return x


def check_last_dim(x, irreps, layer, arg):
    dim = x.shape[-1]
    if dim is not None and dim != irreps.dim:
        raise ValueError(
            f"{layer}: {arg} must have a last axis of size {irreps.dim} for irreps {irreps}. "
            f"Received: {arg}.shape={tuple(x.shape)}"
        )


def check_weights(w, numel, dtype, layer, arg):
    """Weights ``(..., numel)`` cast to ``dtype``, or a ``ValueError`` naming the layer."""
    if w is None:
        raise ValueError(f"{layer}: weights are needed ({numel} numbers). Received: {arg}=None")
    w = ops.cast(ops.convert_to_tensor(w), dtype)
    if w.shape[-1] is not None and w.shape[-1] != numel:
        raise ValueError(
            f"{layer}: {arg} must have a last axis of size weight_numel={numel}. Received: {arg}.shape={tuple(w.shape)}"
        )
    return w


def broadcast_batch(xs):
    """Broadcast the batch axes (all but the last) of several tensors; returns tensors and batch shape."""
    shapes = [tuple(x.shape[:-1]) for x in xs]
    if all(None not in s for s in shapes):
        batch = tuple(int(d) for d in np.broadcast_shapes(*shapes))
        out = [x if tuple(x.shape[:-1]) == batch else ops.broadcast_to(x, batch + (x.shape[-1],)) for x in xs]
        return out, batch
    # dynamic batch sizes: broadcast by arithmetic with a ones tensor shaped like the others' batch
    ref = None
    for x in xs:
        ones = _ones_column(x)
        ref = ones if ref is None else ref * ops.cast(ones, ref.dtype)
    out = [x * ops.cast(ref, x.dtype) for x in xs]
    return out, tuple(ops.shape(out[0])[:-1])


def _ones_column(x):
    """Ones ``[..., 1]`` with ``x``'s batch axes, also when ``x`` has a last axis of size 0."""
    if x.shape[-1] == 0:
        return ops.ones_like(ops.sum(x, axis=-1, keepdims=True))
    return ops.ones_like(x[..., :1])


def zeros_rows(like, n):
    """Zeros ``[Z, n]`` with the rows and dtype of ``like [Z, ...]`` (any number of columns, even 0)."""
    return ops.zeros((axis_size(like, 0), n), dtype=like.dtype)


def flatten_batch(x):
    """``[..., n]`` -> ``[Z, n]`` (the row count is spelled out when ``n == 0``, where -1 is ambiguous)."""
    n = x.shape[-1]
    if n != 0:
        return ops.reshape(x, (-1, n))
    rows = 1
    for i, d in enumerate(x.shape[:-1]):
        rows = rows * (d if d is not None else ops.shape(x)[i])
    return ops.reshape(x, (rows, 0))


def split_sizes(x, sizes):
    """``[..., sum(sizes)]`` -> one ``[..., size]`` per size, by one split op.

    Slicing each piece out separately would work too, but the gradient of every slice is a
    zero-padded copy of the whole tensor and XLA sums these pads element by element (one
    select per piece per element); the gradient of one split is one concatenate.
    """
    sizes = [int(c) for c in sizes]
    nonzero = [c for c in sizes if c > 0]
    if len(nonzero) <= 1:
        pieces = [x] if nonzero else []
    else:
        pieces = backend.split(x, nonzero, axis=-1)
    pieces = iter(pieces)
    return [next(pieces) if c > 0 else x[..., :0] for c in sizes]


def split_blocks(x, irreps):
    """``[..., irreps.dim]`` -> one ``[..., mul * (2l+1)]`` per block (see `split_sizes`)."""
    return split_sizes(x, [mul * ir.dim for mul, ir in irreps])


def to_blocks(x, irreps):
    """``[Z, irreps.dim]`` -> list of ``[Z, 2l+1, mul]`` (None for empty blocks)."""
    blocks = []
    for b, (mul, ir) in zip(split_blocks(x, irreps), irreps):
        if mul == 0:
            blocks.append(None)
            continue
        blocks.append(ops.transpose(ops.reshape(b, (-1, mul, ir.dim)), (0, 2, 1)))
    return blocks


def from_blocks(blocks, irreps, batch_shape, like):
    """List of ``[Z, 2l+1, mul]`` -> ``[*batch_shape, irreps.dim]``."""
    parts = []
    for b, (mul, ir) in zip(blocks, irreps):
        if mul == 0:
            continue
        parts.append(ops.reshape(ops.transpose(b, (0, 2, 1)), (-1, mul * ir.dim)))
    if not parts:
        out = ops.zeros_like(like[:, :0])
    elif len(parts) == 1:
        out = parts[0]
    else:
        out = ops.concatenate(parts, axis=-1)
    return ops.reshape(out, tuple(batch_shape) + (irreps.dim,))


def mix_channels(items, mul):
    """``sum_k X_k @ W_k`` over ``items = [(X_k [Z, d, u_k], W_k [u_k, mul]), ...]`` -> ``[Z, d, mul]``:
    one matrix product of the inputs concatenated along their channels and the matrices stacked
    along their rows (every input block of a linear map into one output block)."""
    X = items[0][0] if len(items) == 1 else ops.concatenate([x for x, _ in items], axis=2)
    W = items[0][1] if len(items) == 1 else ops.concatenate([w for _, w in items], axis=0)
    return ops.reshape(ops.matmul(ops.reshape(X, (-1, X.shape[2])), W), (-1, X.shape[1], mul))


def axis_size(x, axis):
    """The size of ``x`` along ``axis``: a Python int when the shape is static, else a tensor."""
    n = x.shape[axis]
    return n if n is not None else ops.shape(x)[axis]
