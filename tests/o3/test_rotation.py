import numpy as np
import pytest

from kerase3 import o3

ATOL = 1e-10


def test_conversions_match_e3nn(o3_ref):
    a, b, c = o3_ref["rot_angles"].T
    np.testing.assert_allclose(o3.angles_to_matrix(a, b, c), o3_ref["rot_matrix"], atol=ATOL)
    np.testing.assert_allclose(o3.angles_to_quaternion(a, b, c), o3_ref["rot_quaternion"], atol=ATOL)
    axis, angle = o3.angles_to_axis_angle(a, b, c)
    np.testing.assert_allclose(axis, o3_ref["rot_axis"], atol=ATOL)
    np.testing.assert_allclose(angle, o3_ref["rot_axis_angle"], atol=ATOL)
    alpha, beta = o3.xyz_to_angles(o3_ref["sh_vectors"][:24])
    np.testing.assert_allclose(alpha, o3_ref["rot_xyz_alpha"], atol=ATOL)
    np.testing.assert_allclose(beta, o3_ref["rot_xyz_beta"], atol=ATOL)


def test_round_trips():
    R = o3.rand_matrix(50, seed=3)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-13)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-13)
    np.testing.assert_allclose(o3.angles_to_matrix(*o3.matrix_to_angles(R)), R, atol=1e-12)
    np.testing.assert_allclose(o3.quaternion_to_matrix(o3.matrix_to_quaternion(R)), R, atol=1e-12)
    np.testing.assert_allclose(o3.axis_angle_to_matrix(*o3.matrix_to_axis_angle(R)), R, atol=1e-12)
    np.testing.assert_allclose(o3.angles_to_matrix(*o3.quaternion_to_angles(o3.matrix_to_quaternion(R))), R, atol=1e-12)
    np.testing.assert_allclose(o3.angles_to_matrix(*o3.axis_angle_to_angles(*o3.matrix_to_axis_angle(R))), R, atol=1e-12)
    q = o3.matrix_to_quaternion(R)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-13)
    xyz = o3.angles_to_xyz(*o3.xyz_to_angles(R[:, 0]))
    np.testing.assert_allclose(xyz, R[:, 0], atol=1e-12)


def test_compose_and_inverse():
    g1, g2 = o3.rand_angles(4, seed=5), o3.rand_angles(4, seed=6)
    R1, R2 = o3.angles_to_matrix(*g1), o3.angles_to_matrix(*g2)
    np.testing.assert_allclose(o3.angles_to_matrix(*o3.compose_angles(*g1, *g2)), R1 @ R2, atol=1e-12)
    np.testing.assert_allclose(o3.compose_matrix(R1, R2), R1 @ R2, atol=1e-14)
    q1, q2 = o3.matrix_to_quaternion(R1), o3.matrix_to_quaternion(R2)
    np.testing.assert_allclose(o3.quaternion_to_matrix(o3.compose_quaternion(q1, q2)), R1 @ R2, atol=1e-12)
    aa1, aa2 = o3.matrix_to_axis_angle(R1), o3.matrix_to_axis_angle(R2)
    np.testing.assert_allclose(o3.axis_angle_to_matrix(*o3.compose_axis_angle(*aa1, *aa2)), R1 @ R2, atol=1e-12)
    np.testing.assert_allclose(o3.angles_to_matrix(*o3.inverse_angles(*g1)), np.swapaxes(R1, -1, -2), atol=1e-12)
    np.testing.assert_allclose(o3.quaternion_to_matrix(o3.inverse_quaternion(q1)), o3.inverse_matrix(R1), atol=1e-12)
    np.testing.assert_allclose(o3.identity_matrix(2), np.broadcast_to(np.eye(3), (2, 3, 3)))
    np.testing.assert_allclose(o3.angles_to_matrix(*o3.identity_angles(2)), o3.identity_matrix(2), atol=1e-15)
    np.testing.assert_allclose(o3.quaternion_to_matrix(o3.identity_quaternion(2)), o3.identity_matrix(2), atol=1e-15)


def test_elementary_rotations_and_axis_angle_at_pi():
    np.testing.assert_allclose(o3.matrix_y(np.pi / 2) @ [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], atol=1e-15)
    np.testing.assert_allclose(o3.matrix_x(np.pi / 2) @ [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], atol=1e-15)
    np.testing.assert_allclose(o3.matrix_z(np.pi / 2) @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-15)
    axis = np.array([1.0, 2.0, -2.0]) / 3
    R = o3.axis_angle_to_matrix(axis, np.pi)
    ax, an = o3.matrix_to_axis_angle(R)
    np.testing.assert_allclose(an, np.pi, atol=1e-12)
    np.testing.assert_allclose(abs(ax @ axis), 1.0, atol=1e-12)
    np.testing.assert_allclose(o3.axis_angle_to_matrix(ax, an), R, atol=1e-12)


def test_random_rotations_are_haar_like():
    R = o3.rand_matrix(20000, seed=0)
    # E[R] = 0 for the Haar measure
    np.testing.assert_allclose(R.mean(axis=0), 0.0, atol=0.02)
    assert o3.rand_quaternion(3, seed=0).shape == (3, 4)
    axis, angle = o3.rand_axis_angle(3, seed=0)
    assert axis.shape == (3, 3) and angle.shape == (3,)


def test_rejects_bad_matrices():
    with pytest.raises(ValueError, match="orthogonal"):
        o3.matrix_to_quaternion(np.ones((3, 3)))
