"""Graph helpers on ``keras.ops``: edge vectors with periodic shifts, scatter sums, pooling."""

from keras import ops

from .. import backend

__all__ = ["edge_vectors", "scatter_sum", "graph_pool"]


def edge_vectors(positions, senders, receivers, shifts=None, cell=None, node_graph=None):
    """``positions[senders] - positions[receivers] + shifts @ cell[graph of the edge]``: ``(E, 3)``.

    Args:
        positions: `(N, 3)`.
        senders, receivers: `(E,)` ints.
        shifts: `(E, 3)` integer cell shifts, or None (no periodicity).
        cell: `(G, 3, 3)` lattice vectors as rows, or None.
        node_graph: `(N,)` graph index of every atom (needed with ``cell``).
    """
    vec = backend.take(positions, senders, axis=0) - backend.take(positions, receivers, axis=0)
    if shifts is not None and cell is not None:
        edge_cell = backend.take(cell, backend.take(node_graph, receivers, axis=0), axis=0)  # (E, 3, 3)
        vec = vec + backend.einsum("ei,eij->ej", ops.cast(shifts, vec.dtype), ops.cast(edge_cell, vec.dtype))
    return vec


def scatter_sum(data, segment_ids, num_segments):
    """Sum of ``data`` rows into ``num_segments`` segments (rows with the same id add up)."""
    return ops.segment_sum(data, segment_ids, num_segments=num_segments)


def graph_pool(node_values, node_graph, num_graphs, reduce="sum", node_mask=None):
    """Per-graph sum or mean of per-node values ``(N, ...)`` -> ``(G, ...)``; masked nodes are left out."""
    if reduce not in ("sum", "mean"):
        raise ValueError(f"graph_pool: reduce must be 'sum' or 'mean'. Received: reduce={reduce!r}")
    if node_mask is not None:
        m = ops.reshape(ops.cast(node_mask, node_values.dtype), (-1,) + (1,) * (len(node_values.shape) - 1))
        node_values = node_values * m
    total = ops.segment_sum(node_values, node_graph, num_segments=num_graphs)
    if reduce == "sum":
        return total
    ones = ops.ones_like(node_values[:, :1]) if node_mask is None else ops.cast(ops.reshape(node_mask, (-1, 1)), node_values.dtype)
    count = ops.segment_sum(ones, node_graph, num_segments=num_graphs)
    count = ops.reshape(ops.maximum(count, 1), (-1,) + (1,) * (len(node_values.shape) - 1))
    return total / count
