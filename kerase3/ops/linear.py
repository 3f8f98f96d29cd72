"""Equivariant linear maps (channel mixing within each irrep), on ``keras.ops``."""

from keras import ops

from .. import backend
from .layout import broadcast_batch, check_last_dim, check_weights, flatten_batch, float_tensor, from_blocks, mix_channels, split_sizes, to_blocks, zeros_rows
from .plan import LinearPlan

__all__ = ["linear", "linear_blocks", "LinearPlan"]


def linear(plan, x, weight=None, bias=None, shared_weights=True):
    """``y = W x (+ b)`` mixing the channels of each irrep, e3nn's normalisation.

    Args:
        plan: `LinearPlan`.
        x: tensor ``(..., irreps_in.dim)``.
        weight: ``(weight_numel,)``, or ``(..., weight_numel)`` if not ``shared_weights``.
        bias: ``(bias_numel,)``, or ``(..., bias_numel)`` if not ``shared_weights``; only
            scalar (0e) output blocks have biases.

    Returns:
        Tensor ``(..., irreps_out.dim)``.
    """
    name = plan.name
    x = float_tensor(x, weight)
    check_last_dim(x, plan.irreps_in, name, "x")
    tensors = [x]
    if plan.weight_numel:
        weight = check_weights(weight, plan.weight_numel, x.dtype, name, "weight")
        if not shared_weights:
            tensors.append(weight)
    if plan.bias_numel:
        if bias is None:
            raise ValueError(f"{name}: biases are needed ({plan.bias_numel} numbers). Received: bias=None")
        bias = ops.cast(ops.convert_to_tensor(bias), x.dtype)
        if not shared_weights:
            tensors.append(bias)
    tensors, batch = broadcast_batch(tensors)
    xf = flatten_batch(tensors[0])
    k = 1
    if plan.weight_numel and not shared_weights:
        weight = flatten_batch(tensors[k])
        k += 1
    if plan.bias_numel and not shared_weights:
        bias = flatten_batch(tensors[k])
    blocks = linear_blocks(plan, to_blocks(xf, plan.irreps_in), weight, bias, shared_weights, like=xf)
    return from_blocks(blocks, plan.irreps_out, batch, xf)


def linear_blocks(plan, blocks_in, weight=None, bias=None, shared_weights=True, like=None):
    """`linear` on features already split into blocks in the ir_mul layout: one ``[Z, 2l+1, mul]``
    per block of ``irreps_in`` (None where ``mul = 0``) -> the same for ``irreps_out``. Layers that
    keep features in blocks between two products (`kerase3.layers.Convolution`) skip the
    reordering to e3nn's layout and back.

    Args:
        plan: `LinearPlan`; weight, bias, shared_weights: as in `linear`, batch axes flattened.
        like: a ``[Z, ...]`` tensor giving rows and dtype for output blocks no input reaches
            (default: the first input block).
    """
    xf = like if like is not None else next(b[:, 0, :] for b in blocks_in if b is not None)
    if weight is not None:
        weight = ops.cast(weight, xf.dtype)
    if bias is not None:
        bias = ops.cast(bias, xf.dtype)

    # group instructions by output block: one matrix product each
    groups = [[] for _ in plan.irreps_out]
    sizes = [u * w for _, _, (u, w), _ in plan.instructions]
    # one split of the weights (a slice per instruction would add a padded gradient each)
    pieces = split_sizes(weight, sizes) if weight is not None and sum(sizes) else [None] * len(sizes)
    for (i_in, i_out, (u, w), alpha), piece in zip(plan.instructions, pieces):
        if u > 0 and w > 0:
            if shared_weights:
                W = ops.reshape(piece, (u, w)) * alpha
            else:
                W = ops.reshape(piece, (-1, u, w)) * alpha
            groups[i_out].append((blocks_in[i_in], W))

    blocks = []
    b_offset = 0
    for i_out, (mul, ir) in enumerate(plan.irreps_out):
        if mul == 0:
            blocks.append(None)
            continue
        items = groups[i_out]
        out = None
        if items:
            if shared_weights:
                out = mix_channels(items, mul)
            else:
                X = items[0][0] if len(items) == 1 else ops.concatenate([b for b, _ in items], axis=2)  # [Z, d, sum u]
                W = items[0][1] if len(items) == 1 else ops.concatenate([w for _, w in items], axis=1)
                out = backend.einsum("zdu,zuw->zdw", X, W)
        if plan.biases[i_out]:
            b = bias[b_offset : b_offset + mul] if shared_weights else bias[:, b_offset : b_offset + mul]
            b = ops.reshape(b, (1, 1, mul)) if shared_weights else ops.reshape(b, (-1, 1, mul))
            b_offset += mul
            out = b + (out if out is not None else ops.reshape(zeros_rows(xf, 1), (-1, 1, 1)))
        if out is None:
            out = ops.reshape(zeros_rows(xf, ir.dim * mul), (-1, ir.dim, mul))
        blocks.append(out)
    return blocks
