"""Rotations of 3D space in four parametrisations, batched numpy functions.

Conventions are e3nn's: Euler angles are Y-X-Y, ``angles_to_matrix(a, b, c) =
matrix_y(a) @ matrix_x(b) @ matrix_y(c)``; quaternions are ``(w, x, y, z)``;
axis-angle is a unit axis ``(..., 3)`` and an angle ``(...)``.
Every function broadcasts over leading dimensions.
"""

import numpy as np

__all__ = [
    "rand_matrix",
    "identity_angles",
    "rand_angles",
    "compose_angles",
    "inverse_angles",
    "identity_quaternion",
    "rand_quaternion",
    "compose_quaternion",
    "inverse_quaternion",
    "rand_axis_angle",
    "compose_axis_angle",
    "identity_matrix",
    "compose_matrix",
    "inverse_matrix",
    "matrix_x",
    "matrix_y",
    "matrix_z",
    "angles_to_matrix",
    "matrix_to_angles",
    "angles_to_quaternion",
    "matrix_to_quaternion",
    "axis_angle_to_quaternion",
    "quaternion_to_axis_angle",
    "matrix_to_axis_angle",
    "angles_to_axis_angle",
    "axis_angle_to_matrix",
    "quaternion_to_matrix",
    "quaternion_to_angles",
    "axis_angle_to_angles",
    "angles_to_xyz",
    "xyz_to_angles",
]


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _as_float(x):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def _normalize(v):
    """Unit vectors along the last axis; the zero vector stays zero."""
    v = _as_float(v)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 0)


def _check_rotation(R, name):
    R = _as_float(R)
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"{name}: expected rotation matrices of shape (..., 3, 3). Received: shape={R.shape}")
    tol = 1e-4 if R.dtype == np.float32 else 1e-7
    eye = np.eye(3, dtype=R.dtype)
    orth = np.abs(R @ np.swapaxes(R, -1, -2) - eye).max() if R.size else 0.0
    if not orth <= tol:
        raise ValueError(f"{name}: the matrix is not orthogonal (|R R^T - 1| = {orth:.2e}). Received: R={R!r}")
    return R


def _check_proper(R, name):
    R = _check_rotation(R, name)
    det = np.linalg.det(R) if R.size else np.ones(R.shape[:-2])
    if np.any(det < 0):
        raise ValueError(
            f"{name}: expected proper rotations (det R = +1); improper matrices have det = -1 "
            f"(use Irreps.D_from_matrix, which handles them through parity). Received: det={det!r}"
        )
    return R


# -- identity, random, compose, inverse ----------------------------------------------------------


def identity_angles(*shape, dtype=np.float64):
    """Euler angles of the identity, three arrays of ``shape``."""
    z = np.zeros(shape, dtype=dtype)
    return z, z.copy(), z.copy()


def rand_angles(*shape, seed=None, dtype=np.float64):
    """Euler angles of rotations uniform on SO(3) (Haar measure)."""
    rng = _rng(seed)
    alpha, gamma = 2 * np.pi * rng.random((2,) + shape)
    beta = np.arccos(2 * rng.random(shape) - 1)
    return alpha.astype(dtype), beta.astype(dtype), gamma.astype(dtype)


def rand_matrix(*shape, seed=None, dtype=np.float64):
    """Rotation matrices ``(*shape, 3, 3)`` uniform on SO(3)."""
    return angles_to_matrix(*rand_angles(*shape, seed=seed, dtype=dtype))


def identity_matrix(*shape, dtype=np.float64):
    return np.broadcast_to(np.eye(3, dtype=dtype), shape + (3, 3)).copy()


def compose_matrix(R1, R2):
    """``R1 @ R2``: first ``R2``, then ``R1``."""
    return _as_float(R1) @ _as_float(R2)


def inverse_matrix(R):
    return np.swapaxes(_as_float(R), -1, -2).copy()


def compose_angles(a1, b1, c1, a2, b2, c2):
    return matrix_to_angles(angles_to_matrix(a1, b1, c1) @ angles_to_matrix(a2, b2, c2))


def inverse_angles(a, b, c):
    return -_as_float(c), -_as_float(b), -_as_float(a)


def identity_quaternion(*shape, dtype=np.float64):
    q = np.zeros(shape + (4,), dtype=dtype)
    q[..., 0] = 1
    return q


def rand_quaternion(*shape, seed=None, dtype=np.float64):
    return angles_to_quaternion(*rand_angles(*shape, seed=seed, dtype=dtype))


def compose_quaternion(q1, q2):
    """Hamilton product ``q1 q2`` (rotation ``q2`` first)."""
    q1, q2 = np.broadcast_arrays(_as_float(q1), _as_float(q2))
    w1, x1, y1, z1 = np.moveaxis(q1, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(q2, -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def inverse_quaternion(q):
    q = _as_float(q).copy()
    q[..., 1:] *= -1
    return q


def rand_axis_angle(*shape, seed=None, dtype=np.float64):
    return angles_to_axis_angle(*rand_angles(*shape, seed=seed, dtype=dtype))


def compose_axis_angle(axis1, angle1, axis2, angle2):
    return quaternion_to_axis_angle(
        compose_quaternion(axis_angle_to_quaternion(axis1, angle1), axis_angle_to_quaternion(axis2, angle2))
    )


# -- elementary rotations ------------------------------------------------------------------------


def _stack_matrix(rows):
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def matrix_x(angle):
    """Rotation by ``angle`` around the x axis, ``(..., 3, 3)``."""
    angle = _as_float(angle)
    c, s, o, z = np.cos(angle), np.sin(angle), np.ones_like(angle), np.zeros_like(angle)
    return _stack_matrix([[o, z, z], [z, c, -s], [z, s, c]])


def matrix_y(angle):
    """Rotation by ``angle`` around the y axis, ``(..., 3, 3)``."""
    angle = _as_float(angle)
    c, s, o, z = np.cos(angle), np.sin(angle), np.ones_like(angle), np.zeros_like(angle)
    return _stack_matrix([[c, z, s], [z, o, z], [-s, z, c]])


def matrix_z(angle):
    """Rotation by ``angle`` around the z axis, ``(..., 3, 3)``."""
    angle = _as_float(angle)
    c, s, o, z = np.cos(angle), np.sin(angle), np.ones_like(angle), np.zeros_like(angle)
    return _stack_matrix([[c, -s, z], [s, c, z], [z, z, o]])


# -- conversions ---------------------------------------------------------------------------------


def angles_to_matrix(alpha, beta, gamma):
    """``matrix_y(alpha) @ matrix_x(beta) @ matrix_y(gamma)``."""
    alpha, beta, gamma = np.broadcast_arrays(_as_float(alpha), _as_float(beta), _as_float(gamma))
    return matrix_y(alpha) @ matrix_x(beta) @ matrix_y(gamma)


def matrix_to_angles(R):
    """Euler angles ``(alpha, beta, gamma)`` of proper rotation matrices."""
    R = _check_proper(R, "matrix_to_angles")
    alpha, beta = xyz_to_angles(R[..., :, 1])
    R0 = np.swapaxes(angles_to_matrix(alpha, beta, np.zeros_like(alpha)), -1, -2) @ R
    gamma = np.arctan2(R0[..., 0, 2], R0[..., 0, 0])
    return alpha, beta, gamma


def angles_to_quaternion(alpha, beta, gamma):
    alpha, beta, gamma = np.broadcast_arrays(_as_float(alpha), _as_float(beta), _as_float(gamma))
    qa = axis_angle_to_quaternion(np.array([0.0, 1.0, 0.0], dtype=alpha.dtype), alpha)
    qb = axis_angle_to_quaternion(np.array([1.0, 0.0, 0.0], dtype=alpha.dtype), beta)
    qc = axis_angle_to_quaternion(np.array([0.0, 1.0, 0.0], dtype=alpha.dtype), gamma)
    return compose_quaternion(qa, compose_quaternion(qb, qc))


def axis_angle_to_quaternion(axis, angle):
    angle = _as_float(angle)
    axis, angle = np.broadcast_arrays(_as_float(axis), angle[..., None])
    axis = _normalize(axis)
    return np.concatenate([np.cos(angle[..., :1] / 2), axis * np.sin(angle / 2)], axis=-1)


def quaternion_to_axis_angle(q):
    q = _as_float(q)
    angle = 2 * np.arccos(np.clip(q[..., 0], -1, 1))
    return _normalize(q[..., 1:]), angle


def matrix_to_axis_angle(R):
    R = _check_proper(R, "matrix_to_axis_angle")
    trace = np.trace(R, axis1=-2, axis2=-1)
    angle = np.arccos(np.clip((trace - 1) / 2, -1, 1))
    axis = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], axis=-1)
    # near angle = pi the antisymmetric part vanishes; read the axis from the symmetric part instead
    sym = (R + np.swapaxes(R, -1, -2)) / 2 - ((trace - 1) / 2)[..., None, None] * np.eye(3)
    col = np.argmax(np.abs(np.diagonal(sym, axis1=-2, axis2=-1)), axis=-1)
    axis_pi = np.take_along_axis(sym, col[..., None, None].repeat(3, -1), axis=-1)[..., 0]
    sign = np.sign(np.sum(axis_pi * axis, axis=-1, keepdims=True))
    axis_pi = axis_pi * np.where(sign == 0, 1.0, sign)
    small = np.linalg.norm(axis, axis=-1, keepdims=True) < 1e-6
    axis = np.where(small & (angle[..., None] > 1), axis_pi, axis)
    return _normalize(axis), angle


def angles_to_axis_angle(alpha, beta, gamma):
    return matrix_to_axis_angle(angles_to_matrix(alpha, beta, gamma))


def axis_angle_to_matrix(axis, angle):
    """Rodrigues' formula."""
    angle = _as_float(angle)
    axis, angle = np.broadcast_arrays(_as_float(axis), angle[..., None])
    n = _normalize(axis)
    angle = angle[..., 0]
    x, y, z = np.moveaxis(n, -1, 0)
    o = np.zeros_like(x)
    K = _stack_matrix([[o, -z, y], [z, o, -x], [-y, x, o]])
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3, dtype=n.dtype) + s * K + (1 - c) * (K @ K)


def quaternion_to_matrix(q):
    q = _as_float(q)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return _stack_matrix(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(R):
    return axis_angle_to_quaternion(*matrix_to_axis_angle(R))


def quaternion_to_angles(q):
    return matrix_to_angles(quaternion_to_matrix(q))


def axis_angle_to_angles(axis, angle):
    return matrix_to_angles(axis_angle_to_matrix(axis, angle))


# -- points on the sphere ------------------------------------------------------------------------


def angles_to_xyz(alpha, beta):
    """Point on the unit sphere: ``(sin b sin a, cos b, sin b cos a)`` (y is the polar axis)."""
    alpha, beta = np.broadcast_arrays(_as_float(alpha), _as_float(beta))
    return np.stack([np.sin(beta) * np.sin(alpha), np.cos(beta), np.sin(beta) * np.cos(alpha)], axis=-1)


def xyz_to_angles(xyz):
    """``(alpha, beta)`` of the direction of ``xyz`` (the zero vector gives ``(0, pi/2)``)."""
    xyz = np.clip(_normalize(xyz), -1, 1)
    beta = np.arccos(xyz[..., 1])
    alpha = np.arctan2(xyz[..., 0], xyz[..., 2])
    return alpha, beta
