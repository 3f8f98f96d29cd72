"""Neighbour lists inside a TensorFlow graph, for served models that receive raw positions.

All pairs against all periodic images within reach (candidates from one matrix product, exact
distances for them alone): O(N^2 * images) memory and time, fine
up to a few thousand atoms. Same convention and results as `neighbor_list`. Bad input fails
with ``InvalidArgumentError`` (graph assertions, checked before anything large is allocated):
non-finite positions or cell, a singular cell with periodic boundaries, more periodic images
than ``max_images``, more candidate pairs than ``max_pairs`` or edges than ``max_edges``.
"""

import tensorflow as tf

__all__ = ["neighbor_list_tensor"]


MAX_IMAGES = 10_000
MAX_EDGES = 1_000_000


def neighbor_list_tensor(positions, cutoff, cell=None, pbc=None, max_edges=MAX_EDGES, max_images=MAX_IMAGES,
                         max_pairs=None, name="neighbor_list_tensor"):
    """``(senders, receivers, shifts)`` as tensors (int32, int32, float) for one structure.

    Args:
        positions: `(N, 3)` float tensor.
        cutoff: `float`.
        cell: `(3, 3)` tensor (rows are lattice vectors) or None.
        pbc: `(3,)` bool tensor or None (no periodicity).
        max_edges: most edges (1 million); more fail with an error naming the count.
        max_images: most periodic images searched (10,000): a cell far smaller than the cutoff fails
            before its images are allocated.
        max_pairs: most candidate pairs ``images * N^2`` (default ``64 * max_edges``).
        name: how the error messages name the caller.
    """
    positions = tf.convert_to_tensor(positions)
    dtype = positions.dtype
    n = tf.shape(positions)[0]
    if cell is None:
        cell = tf.zeros((3, 3), dtype)
    cell = tf.cast(tf.convert_to_tensor(cell), dtype)
    pbc = tf.zeros((3,), tf.bool) if pbc is None else tf.cast(tf.convert_to_tensor(pbc), tf.bool)
    periodic = tf.cast(pbc, dtype)
    max_pairs = 64 * max_edges if max_pairs is None else max_pairs
    # a cell safe to invert: non-periodic directions do not need it
    det = tf.linalg.det(cell)
    checks = [
        tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(positions)),
                            [f"{name}: positions must be finite. Received:", positions], summarize=30),
        tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(cell)),
                            [f"{name}: the cell must be finite. Received:", cell], summarize=9),
        tf.debugging.Assert(tf.logical_or(tf.logical_not(tf.reduce_any(pbc)), tf.abs(det) > 1e-12),
                            [f"{name}: periodic boundaries need a non-singular cell. Received: det(cell) =", det,
                             "cell =", cell, "pbc =", pbc], summarize=9),
    ]
    with tf.control_dependencies(checks):
        det = tf.identity(det)
    safe_cell = tf.where(tf.abs(det) > 1e-12, cell, tf.eye(3, dtype=dtype))
    inv = tf.linalg.inv(safe_cell)
    offset = tf.floor(positions @ inv) * periodic  # (N, 3) integer offsets along periodic axes
    wrapped = positions - offset @ cell
    recip_norm = tf.norm(tf.transpose(inv), axis=1)  # 1 / distance between lattice planes
    reps_f = tf.math.ceil(cutoff * recip_norm) * periodic  # float: a tiny cell must not overflow int32
    n_images = tf.reduce_prod(2.0 * tf.cast(reps_f, tf.float64) + 1.0)
    n_pairs = n_images * tf.cast(n, tf.float64) ** 2
    checks = [
        tf.debugging.Assert(n_images <= max_images,
                            [f"{name}: the cell is too small for cutoff {cutoff}: more than max_images={max_images} "
                             "periodic images. Images needed:", n_images, "cell =", cell], summarize=9),
        tf.debugging.Assert(n_pairs <= max_pairs,
                            [f"{name}: more than max_pairs={max_pairs} candidate pairs (images x atoms^2):", n_pairs],
                            summarize=3),
    ]
    with tf.control_dependencies(checks):
        reps = tf.cast(reps_f, tf.int32)
    ranges = [tf.range(-reps[i], reps[i] + 1) for i in range(3)]
    grid = tf.meshgrid(*ranges, indexing="ij")
    images = tf.cast(tf.stack([tf.reshape(g, [-1]) for g in grid], axis=1), dtype)  # (M, 3)
    # candidates from |a - b|^2 = |a|^2 + |b|^2 - 2 a.b (one matrix product, no (M, N, N, 3) tensor),
    # with a margin for its round-off; then the exact distances of the candidates alone.
    # c[m, j, i]: sender j in image m, receiver i
    shifted = (images @ cell)[:, None, :] + wrapped[None]  # (M, N, 3)
    sq_s = tf.reduce_sum(shifted * shifted, axis=-1)  # (M, N)
    sq_w = tf.reduce_sum(wrapped * wrapped, axis=-1)  # (N,)
    cross = tf.reshape(tf.reshape(shifted, [-1, 3]) @ tf.transpose(wrapped), [-1, n, n])
    approx = sq_s[:, :, None] + sq_w[None, None, :] - 2.0 * cross
    scale = tf.reduce_max(tf.concat([tf.reshape(sq_s, [-1]), [0.0]], 0)) + tf.reduce_max(tf.concat([sq_w, [0.0]], 0)) + cutoff * cutoff
    margin = 64.0 * (2.3e-16 if dtype == tf.float64 else 1.2e-7) * scale
    candidates = approx < cutoff * cutoff + margin
    n_candidates = tf.reduce_sum(tf.cast(candidates, tf.int64))
    slack = max(1000, max_edges // 10)  # candidates within the margin of the cutoff that are no edges
    check = tf.debugging.Assert(n_candidates <= max_edges + slack,
                                [f"{name}: more than max_edges={max_edges} edges within cutoff {cutoff}:", n_candidates],
                                summarize=3)
    with tf.control_dependencies([check]):
        idx = tf.where(candidates)  # (C, 3): image, sender, receiver -- row-major: by image first
    m, j, i = idx[:, 0], tf.cast(idx[:, 1], tf.int32), tf.cast(idx[:, 2], tf.int32)
    cart = tf.gather(images @ cell, m)
    d = tf.gather(wrapped, j) + cart - tf.gather(wrapped, i)  # the exact distance vectors
    zero_image = tf.reduce_all(tf.equal(tf.gather(images, m), 0), axis=1)
    keep = (tf.reduce_sum(d * d, axis=-1) < cutoff * cutoff) & ~(zero_image & tf.equal(i, j))
    n_edges = tf.reduce_sum(tf.cast(keep, tf.int64))
    check = tf.debugging.Assert(n_edges <= max_edges, [f"{name}: more than max_edges={max_edges} edges within "
                                                       f"cutoff {cutoff}:", n_edges], summarize=3)
    with tf.control_dependencies([check]):
        kept = tf.where(keep)[:, 0]
    m, i, j = tf.gather(m, kept), tf.gather(i, kept), tf.gather(j, kept)
    shifts = tf.gather(images, m) - tf.gather(offset, j) + tf.gather(offset, i)
    # sort by receiver then sender (stable: images in order), like neighbor_list
    key = tf.cast(i, tf.int64) * tf.cast(n, tf.int64) + tf.cast(j, tf.int64)
    order = tf.argsort(key, stable=True)
    return tf.gather(j, order), tf.gather(i, order), tf.gather(shifts, order)
