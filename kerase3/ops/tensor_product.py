"""Clebsch-Gordan tensor products by instruction list, on ``keras.ops``.

`tensor_product` checks and flattens its inputs and hands them to the kernel its plan chose when
it was made (`TensorProductPlan.kernel`):

- ``"coupled"`` (`kerase3.ops._coupled`): every path a weighted ``uvu`` with a one-channel second
  input -- the convolution product of NequIP, MACE and `kerase3.layers.Convolution` -- with a
  hand-written gradient of every order;
- ``"general"`` (`kerase3.ops._general`): every connection mode, one function per family of modes,
  shared or per-sample weights.
"""

import numpy as np
from keras import ops

from ..o3 import wigner_3j
from ._coupled import coupled_scatter, coupled_tensor_product, to_ir_mul
from ._general import general_tensor_product
from .layout import (broadcast_batch, check_last_dim, check_weights, flatten_batch, float_tensor, from_blocks, mix_channels,
                     split_blocks, split_sizes, to_blocks)
from .plan import TensorProductPlan

__all__ = ["tensor_product", "tensor_product_blocks", "scatter_tensor_product", "scatter_tensor_product_blocks",
           "TensorProductPlan"]


def tensor_product(plan, x1, x2, weights=None, shared_weights=True):
    """Tensor product ``x1 ⊗ x2`` following ``plan``'s instructions.

    Args:
        plan: `TensorProductPlan`.
        x1: tensor ``(..., irreps_in1.dim)``.
        x2: tensor ``(..., irreps_in2.dim)``.
        weights: ``(weight_numel,)`` if ``shared_weights`` else ``(..., weight_numel)``
            broadcast against the batch; None when no instruction has weights.
        shared_weights: `bool`.

    Returns:
        Tensor ``(..., irreps_out.dim)``; the batch axes are broadcast.

    Example:
        >>> import numpy as np
        >>> plan = TensorProductPlan("1o", "1o", "0e", [(0, 0, 0, "uuu", False)])
        >>> x = np.array([[1.0, 2.0, 2.0]])
        >>> np.round(np.asarray(tensor_product(plan, x, x)), 6).tolist()  # |x|^2 / sqrt(3)
        [[5.196152]]
    """
    name = plan.name
    x1 = float_tensor(x1, weights if plan.weight_numel > 0 and weights is not None else None)
    x2 = ops.cast(ops.convert_to_tensor(x2), x1.dtype)
    check_last_dim(x1, plan.irreps_in1, name, "x1")
    check_last_dim(x2, plan.irreps_in2, name, "x2")
    if plan.weight_numel > 0:
        weights = check_weights(weights, plan.weight_numel, x1.dtype, name, "weights")
    if shared_weights or plan.weight_numel == 0:
        (x1, x2), batch = broadcast_batch([x1, x2])
        w = weights
    else:
        (x1, x2, weights), batch = broadcast_batch([x1, x2, weights])
        w = flatten_batch(weights)
    x1f, x2f = flatten_batch(x1), flatten_batch(x2)
    if plan.kernel == "coupled":
        out = coupled_tensor_product(plan.coupled_tables, x1f, x2f, w, shared_weights)
    else:
        out = general_tensor_product(plan, x1f, x2f, w, shared_weights)
    return ops.reshape(out, tuple(batch) + (plan.irreps_out.dim,))


def tensor_product_blocks(plan, blocks1, x2, weights=None):
    """`tensor_product` with shared weights on ``x1`` split into ir_mul blocks, in and out.

    ``blocks1``: one ``[Z, 2l+1, mul]`` per block of ``irreps_in1`` (None where ``mul = 0``), as
    `kerase3.ops.linear_blocks` gives them; ``x2``: ``[Z, irreps_in2.dim]``. Returns one
    ``[Z, 2l+1, mul]`` per block of ``irreps_out`` (None where no path reaches it).

    When ``x2`` holds only scalars and every path is a weighted ``uvw`` (the species
    self-connection of NequIP and `kerase3.layers.Convolution`: features times one-hot species),
    each output block is one matrix product of the outer products ``x1 (x) x2`` of every path
    into it (the Clebsch-Gordan coefficient of ``l x 0 -> l`` is a multiple of the identity), so
    features never leave the ir_mul layout. Other plans go through `tensor_product`.
    """
    rows = next((b for b in blocks1 if b is not None), None)
    if rows is None:
        raise ValueError(f"{plan.name}: blocks1 holds no block of irreps_in1={plan.irreps_in1}. "
                         f"Received: {len(blocks1)} empty blocks")
    x2 = ops.cast(ops.convert_to_tensor(x2), rows.dtype)
    check_last_dim(x2, plan.irreps_in2, plan.name, "x2")
    if not _scalar_second_input(plan):
        x1 = from_blocks(blocks1, plan.irreps_in1, (-1,), rows[:, 0, :])
        reached = {ins.i_out for ins, _ in plan.paths}
        out = to_blocks(tensor_product(plan, x1, x2, weights), plan.irreps_out)
        return [b if i in reached else None for i, b in enumerate(out)]
    weights = check_weights(weights, plan.weight_numel, rows.dtype, plan.name, "weights")
    x2b = split_blocks(x2, plan.irreps_in2)
    pieces = split_sizes(weights, [int(np.prod(ins.path_shape)) for ins in plan.instructions])
    groups = [[] for _ in plan.irreps_out]
    for ins, piece in zip(plan.instructions, pieces):
        u, v, wo = ins.path_shape
        if u * v * wo == 0:
            continue
        l = plan.irreps_in1[ins.i_in1].ir.l
        c = ins.path_weight * float(wigner_3j(l, 0, l)[0, 0, 0])
        t = ops.expand_dims(blocks1[ins.i_in1], 3) * ops.reshape(x2b[ins.i_in2], (-1, 1, 1, v))  # [Z, 2l+1, u, v]
        groups[ins.i_out].append((ops.reshape(t, (-1, 2 * l + 1, u * v)), ops.reshape(piece, (u * v, wo)) * c))
    return [mix_channels(items, mul) if items else None for (mul, _), items in zip(plan.irreps_out, groups)]


def _scalar_second_input(plan):
    """Every instruction a weighted ``uvw`` path with a scalar second input."""
    return plan.weight_numel > 0 and all(
        ins.connection_mode == "uvw" and ins.has_weight and plan.irreps_in2[ins.i_in2].ir.l == 0 for ins in plan.instructions)


def scatter_tensor_product(plan, node_features, edge_features, edge_weights, senders, receivers, num_nodes,
                           weight_matrix=None):
    """Messages ``x[senders] ⊗ edge_features`` (weights per edge) summed at their receivers.

    Equal to ``segment_sum(tensor_product(plan, take(x, senders), edge_features, edge_weights,
    shared_weights=False), receivers, num_nodes)``. With the coupled kernel the node features
    are reordered once per node, the messages stay in the kernel's own layout and only their
    sums are reordered back: no edge-level transposes; edges are taken a block at a time
    (`kerase3.ops._coupled.coupled_scatter`), so no tensor of all edges' messages exists.

    Args:
        plan: `TensorProductPlan`.
        node_features: ``(N, irreps_in1.dim)``.
        edge_features: ``(E, irreps_in2.dim)``, e.g. spherical harmonics of the edge vectors.
        edge_weights: ``(E, weight_numel)``, or None when no instruction has weights; with
            ``weight_matrix``, ``(E, H)`` features whose product with it are the weights.
        senders, receivers: ``(E,)`` node indices.
        num_nodes: number of nodes ``N`` (int or scalar tensor).
        weight_matrix: optional ``(H, weight_numel)``: the weights are ``edge_weights @
            weight_matrix`` (a radial network's last layer), computed a block of edges at a time
            by the convolution kernel and never stored for all edges.

    Returns:
        ``(N, irreps_out.dim)``.

    Example:
        >>> plan = TensorProductPlan("2x0e", "1o", "2x1o", [(0, 0, 0, "uvu", True)])
        >>> x, sh, w = np.ones((2, 2)), np.array([[1.0, 0, 0], [0, 1, 0]]), np.ones((2, 2))
        >>> out = scatter_tensor_product(plan, x, sh, w, np.array([0, 1]), np.array([1, 1]), 2)
        >>> np.asarray(out).round(3).tolist()
        [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]]
    """
    name = plan.name
    x = float_tensor(node_features, edge_weights)
    check_last_dim(x, plan.irreps_in1, name, "node features")
    if weight_matrix is not None and plan.kernel != "coupled":
        edge_weights, weight_matrix = _weights_of(edge_weights, weight_matrix, plan, x.dtype), None
    if plan.kernel != "coupled":
        msg = tensor_product(plan, ops.take(x, senders, axis=0), edge_features, edge_weights, shared_weights=False)
        return ops.segment_sum(msg, receivers, num_segments=num_nodes)
    e = ops.convert_to_tensor(edge_features, dtype=x.dtype)
    check_last_dim(e, plan.irreps_in2, name, "edge_features")
    w, W = _edge_weight_args(edge_weights, weight_matrix, plan, x.dtype)
    T = plan.coupled_tables
    return T.to_mul_ir(coupled_scatter(T, to_ir_mul(x, plan.irreps_in1), e, w, senders, receivers, num_nodes, weight_matrix=W))


def scatter_tensor_product_blocks(plan, node_blocks, edge_features, edge_weights, senders, receivers, num_nodes,
                                  weight_matrix=None):
    """`scatter_tensor_product` on node features split into ir_mul blocks, in and out.

    ``node_blocks``: one ``[N, 2l+1, mul]`` per block of ``irreps_in1`` (None where ``mul = 0``), as
    `kerase3.ops.linear_blocks` gives them. Returns one ``[N, 2l+1, mul]`` per block of
    ``irreps_out`` (None where no path reaches it). Layers that mix channels before and after
    the product (`kerase3.layers.Convolution`) then never reorder features to e3nn's layout
    in between. ``weight_matrix`` as in `scatter_tensor_product`.
    """
    rows = next((b for b in node_blocks if b is not None), None)
    if rows is None:
        raise ValueError(f"{plan.name}: node_blocks holds no block of irreps_in1={plan.irreps_in1}. "
                         f"Received: {len(node_blocks)} empty blocks")
    if plan.kernel != "coupled":
        x = from_blocks(node_blocks, plan.irreps_in1, (-1,), rows[:, 0, :])
        out = scatter_tensor_product(plan, x, edge_features, edge_weights, senders, receivers, num_nodes, weight_matrix)
        return to_blocks(out, plan.irreps_out)
    flat = [ops.reshape(b, (-1, b.shape[1] * b.shape[2])) for b in node_blocks if b is not None]
    x = flat[0] if len(flat) == 1 else ops.concatenate(flat, axis=-1)
    e = ops.convert_to_tensor(edge_features, dtype=x.dtype)
    check_last_dim(e, plan.irreps_in2, plan.name, "edge_features")
    w, W = _edge_weight_args(edge_weights, weight_matrix, plan, x.dtype)
    T = plan.coupled_tables
    return T.native_blocks(coupled_scatter(T, x, e, w, senders, receivers, num_nodes, weight_matrix=W))


def _edge_weight_args(edge_weights, weight_matrix, plan, dtype):
    """``(w, None)`` or, with a weight matrix ``(H, weight_numel)``, ``(h, W)``; checked."""
    if weight_matrix is None:
        return check_weights(edge_weights, plan.weight_numel, dtype, plan.name, "edge_weights"), None
    W = ops.cast(ops.convert_to_tensor(weight_matrix), dtype)
    if len(W.shape) != 2 or W.shape[1] != plan.weight_numel:
        raise ValueError(f"{plan.name}: weight_matrix must have shape (H, {plan.weight_numel}) for irreps_out="
                         f"{plan.irreps_out}. Received: shape={tuple(W.shape)}")
    h = ops.cast(ops.convert_to_tensor(edge_weights), dtype)
    if len(h.shape) != 2 or h.shape[1] != W.shape[0]:
        raise ValueError(f"{plan.name}: with weight_matrix of shape {tuple(W.shape)}, edge_weights must have shape "
                         f"(E, {W.shape[0]}). Received: shape={tuple(h.shape)}")
    return h, W


def _weights_of(edge_weights, weight_matrix, plan, dtype):
    h, W = _edge_weight_args(edge_weights, weight_matrix, plan, dtype)
    return ops.matmul(h, W)
