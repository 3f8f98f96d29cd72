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


def _two_graph_batch():
    from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch

    rng = np.random.default_rng(0)
    graphs = [graph_from_arrays(rng.uniform(0, 2, (n, 3)), [1] * n, 2.0) for n in (4, 3)]
    b = batch_graphs(graphs)
    return pad_batch(b, len(b["positions"]) + 1, len(b["senders"]) + 2, 3)


def _pair_model(vector_fn):
    """Per-node outputs from edge vectors summed at the receivers: ``vector_fn(vec) -> (E, 3)``."""

    def model(b):
        vec = ops.take(b["positions"], b["senders"], axis=0) - ops.take(b["positions"], b["receivers"], axis=0)
        n = ops.shape(b["positions"])[0]
        per_node = ops.segment_sum(vector_fn(vec), b["receivers"], num_segments=n)
        energy = ops.segment_sum(ops.sum(per_node**2, axis=1), b["node_graph"], num_segments=3)
        return {"energy": energy, "vectors": per_node}

    return model


def test_graph_model_check_passes_an_equivariant_model_and_catches_broken_ones():
    from kerase3.testing import assert_graph_model_equivariant, graph_model_equivariance_error

    b = _two_graph_batch()
    good = _pair_model(lambda v: v * ops.exp(-ops.sum(v**2, axis=1, keepdims=True)))
    errors = assert_graph_model_equivariant(good, b, {"energy": "0e", "vectors": "1o"}, n_trials=2, seed=0)
    assert errors["scale"] > 0.1
    # a pseudovector claimed as a vector fails under inversion only
    errs = graph_model_equivariance_error(good, b, {"energy": "0e", "vectors": "1e"}, do_parity=False, seed=0)
    assert errs["vectors"] < 1e-12
    with pytest.raises(AssertionError, match="vectors"):
        assert_graph_model_equivariant(good, b, {"energy": "0e", "vectors": "1e"}, seed=0)
    # a fixed direction breaks rotations; absolute positions break translations; node order breaks permutations
    skewed = _pair_model(lambda v: v * np.array([1.0, 2.0, 1.0]))
    with pytest.raises(AssertionError, match="energy"):
        assert_graph_model_equivariant(skewed, b, {"energy": "0e", "vectors": "1o"}, seed=0)

    def absolute(x):
        out = good(x)
        return dict(out, energy=out["energy"] + ops.segment_sum(ops.sum(x["positions"], axis=1), x["node_graph"], num_segments=3))

    errs = graph_model_equivariance_error(absolute, b, {"energy": "0e"}, do_permutation=False, seed=0)
    assert errs["energy"] > 1e-3
    errs = graph_model_equivariance_error(absolute, b, {"energy": "0e"}, do_translation=False, do_permutation=False, seed=0)
    assert errs["energy"] > 1e-3  # rotations move the sum of the positions too

    def ordered(x):
        out = good(x)
        weights = ops.cast(ops.arange(ops.shape(x["positions"])[0]), "float64")
        return dict(out, energy=out["energy"] + ops.segment_sum(weights * ops.sum(out["vectors"] ** 2, axis=1),
                                                                x["node_graph"], num_segments=3))

    errs = graph_model_equivariance_error(ordered, b, {"energy": "0e"}, do_parity=False, do_translation=False, seed=0)
    assert errs["energy"] > 1e-3
    with pytest.raises(ValueError, match="needs basis"):
        graph_model_equivariance_error(good, b, {"energy": "orbital"})
