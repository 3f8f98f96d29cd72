import numpy as np
import pytest
from keras import ops

from kerase3 import o3
from kerase3.testing import assert_equivariant, default_tolerance, equivariance_error, random_irreps


def test_linear_map_commuting_with_D_is_equivariant():
    irreps = o3.Irreps("2x0e + 1o + 2e")

    def f(x):  # scales each irrep block: equivariant
        scale = np.concatenate([np.full(mul * ir.dim, 1.0 + i) for i, (mul, ir) in enumerate(irreps)])
        return x * scale

    errors = assert_equivariant(f, [irreps], [irreps], seed=0)
    assert set(errors) == {"scale", (0, False, False), (1, False, False)}


def test_catches_wrong_parity_and_non_equivariance():
    # a vector treated as a pseudovector: fine under rotations, wrong under inversion
    errors = equivariance_error(lambda x: x, ["1o"], ["1e"], seed=0)
    assert errors[(0, False, False)] < 1e-12 and errors[(1, False, False)] > 0.1
    with pytest.raises(AssertionError, match="rotation\\+inversion"):
        assert_equivariant(lambda x: x, ["1o"], ["1e"], seed=0)
    # mixing components of a vector with a fixed matrix is not equivariant
    M = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(lambda x: ops.matmul(x, M), ["1o"], ["1o"], seed=0)


def test_points_translation_and_permutation():
    # centroid-relative positions: invariant to translation, equivariant to rotation, per-node
    def f(pos, species):
        centred = pos - ops.mean(pos, axis=0, keepdims=True)
        return centred * ops.cast(species, pos.dtype)[:, None], ops.sum(centred**2)

    rng = np.random.default_rng(0)
    pos, species = rng.normal(size=(6, 3)), rng.integers(1, 4, size=6)
    errors = assert_equivariant(
        f,
        ["cartesian_points", None],
        ["cartesian_vectors", "0e"],
        [pos, species],
        permute_in=[0, 0],
        permute_out=[0, None],
        seed=1,
    )
    assert (1, True, True) in errors
    # a function that depends on absolute positions fails the translation check
    with pytest.raises(AssertionError, match="translation"):
        assert_equivariant(lambda p: p, ["cartesian_points"], ["cartesian_vectors"], seed=2)
    # one that depends on the node order fails the permutation check
    with pytest.raises(AssertionError, match="permutation"):
        assert_equivariant(
            lambda p: p - p[:1], ["cartesian_points"], ["cartesian_vectors"], [pos], permute_in=[0], permute_out=[0], seed=3
        )


def test_index_inputs_are_relabelled():
    # edge vectors from senders/receivers: permuting nodes and relabelling indices leaves edges unchanged
    rng = np.random.default_rng(4)
    pos = rng.normal(size=(5, 3))
    senders, receivers = np.array([0, 1, 2, 3, 4]), np.array([1, 2, 3, 4, 0])

    def f(p, s, r):
        return ops.take(p, r, axis=0) - ops.take(p, s, axis=0)

    assert_equivariant(
        f,
        ["cartesian_points", None, None],
        ["cartesian_vectors"],
        [pos, senders, receivers],
        permute_in=[0, "indices", "indices"],
        permute_out=[None],
        seed=5,
    )


def test_argument_errors():
    with pytest.raises(ValueError, match="Received"):
        equivariance_error(lambda x: x, ["1q"], ["1o"])
    with pytest.raises(ValueError, match="size 3"):
        equivariance_error(lambda x: x, ["1o"], ["1o"], [np.zeros((2, 4))])
    with pytest.raises(ValueError, match="outputs"):
        equivariance_error(lambda x: (x, x), ["1o"], ["1o"])
    with pytest.raises(ValueError, match="args_in"):
        equivariance_error(lambda x: x, [None], ["1o"])


def test_float32_tolerance():
    assert default_tolerance("float32") == (5e-5, 5e-5)
    assert default_tolerance("float64") == (1e-10, 1e-10)
    from kerase3.ops import spherical_harmonics

    assert_equivariant(lambda v: spherical_harmonics(6, v), ["cartesian_vectors"], ["6e"], dtype="float32", seed=0)


def test_random_irreps():
    irreps = random_irreps(50, lmax=3, mul_max=4, seed=0)
    assert len(irreps) == 50 and all(isinstance(i, o3.Irreps) for i in irreps)
    assert all(ir.l <= 3 for i in irreps for _, ir in i)
    clean = random_irreps(20, clean=True, allow_empty=False, seed=1)
    assert all(i == i.regroup() and i.dim > 0 for i in clean)
    assert random_irreps(seed=2) == random_irreps(seed=2)
