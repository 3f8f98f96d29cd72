"""Neighbour lists inside a TensorFlow graph, for served models that receive raw positions.

All pairs against all periodic images within reach: O(N^2 * images) memory and time, fine
up to a few thousand atoms. Same convention and results as `neighbor_list`.
"""

import tensorflow as tf

__all__ = ["neighbor_list_tensor"]


def neighbor_list_tensor(positions, cutoff, cell=None, pbc=None):
    """``(senders, receivers, shifts)`` as tensors (int32, int32, float) for one structure.

    Args:
        positions: `(N, 3)` float tensor.
        cutoff: `float`.
        cell: `(3, 3)` tensor (rows are lattice vectors) or None.
        pbc: `(3,)` bool tensor or None (no periodicity).
    """
    positions = tf.convert_to_tensor(positions)
    dtype = positions.dtype
    n = tf.shape(positions)[0]
    if cell is None:
        cell = tf.zeros((3, 3), dtype)
    cell = tf.cast(tf.convert_to_tensor(cell), dtype)
    pbc = tf.zeros((3,), tf.bool) if pbc is None else tf.cast(tf.convert_to_tensor(pbc), tf.bool)
    periodic = tf.cast(pbc, dtype)
    # a cell safe to invert: non-periodic directions do not need it
    det = tf.linalg.det(cell)
    safe_cell = tf.where(tf.abs(det) > 1e-12, cell, tf.eye(3, dtype=dtype))
    inv = tf.linalg.inv(safe_cell)
    offset = tf.floor(positions @ inv) * periodic  # (N, 3) integer offsets along periodic axes
    wrapped = positions - offset @ cell
    recip_norm = tf.norm(tf.transpose(inv), axis=1)  # 1 / distance between lattice planes
    reps = tf.cast(tf.math.ceil(cutoff * recip_norm), tf.int32) * tf.cast(pbc, tf.int32)
    ranges = [tf.range(-reps[i], reps[i] + 1) for i in range(3)]
    grid = tf.meshgrid(*ranges, indexing="ij")
    images = tf.cast(tf.stack([tf.reshape(g, [-1]) for g in grid], axis=1), dtype)  # (M, 3)
    # d[m, i, j] = wrapped[j] + images[m] @ cell - wrapped[i]
    d = wrapped[None, None, :, :] + (images @ cell)[:, None, None, :] - wrapped[None, :, None, :]
    dist2 = tf.reduce_sum(d * d, axis=-1)  # (M, N, N)
    is_zero_image = tf.reduce_all(tf.equal(images, 0), axis=1)  # (M,)
    same = tf.eye(n, dtype=tf.bool)[None] & is_zero_image[:, None, None]
    mask = (dist2 < cutoff * cutoff) & ~same
    idx = tf.where(mask)  # (E, 3): image, receiver, sender -- row-major order sorts by image first
    m, i, j = idx[:, 0], tf.cast(idx[:, 1], tf.int32), tf.cast(idx[:, 2], tf.int32)
    shifts = tf.gather(images, m) - tf.gather(offset, j) + tf.gather(offset, i)
    # sort by receiver then sender, like neighbor_list
    key = tf.cast(i, tf.int64) * tf.cast(n, tf.int64) + tf.cast(j, tf.int64)
    order = tf.argsort(key, stable=True)
    return tf.gather(j, order), tf.gather(i, order), tf.gather(shifts, order)
