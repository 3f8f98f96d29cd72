import os
import subprocess
import sys

import numpy as np
import pytest
import keras
from keras import ops

from kerase3.ops import sh_irreps, spherical_harmonics
from kerase3.testing import assert_equivariant

ALL = list(range(13))
requires_tf = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="uses tf.GradientTape / tf.function")


@pytest.mark.parametrize("normalization", ["integral", "component", "norm"])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_e3nn(o3_ref, normalization, normalize):
    x = o3_ref["sh_vectors"]
    got = ops.convert_to_numpy(spherical_harmonics(ALL, x, normalize=normalize, normalization=normalization))
    ref = o3_ref[f"sh_{normalization}_{int(normalize)}"]
    assert got.shape == ref.shape == (len(x), 169)
    scale = np.maximum(1.0, np.abs(ref))  # unnormalised degree-12 polynomials reach ~1e6
    np.testing.assert_array_less(np.abs(got - ref) / scale, 1e-10)


@pytest.mark.parametrize("normalization", ["integral", "component", "norm"])
def test_numpy_harmonics_match_e3nn(o3_ref, normalization):
    """The numpy evaluation (plots, peak search) gives e3nn's numbers too, and the zero vector only Y^0."""
    from kerase3.ops.s2grid import spherical_harmonics_numpy

    x = o3_ref["sh_vectors"]
    got = spherical_harmonics_numpy(ALL, x.reshape(1, -1, 3), normalization).reshape(len(x), -1)
    np.testing.assert_allclose(got, o3_ref[f"sh_{normalization}_1"], rtol=0, atol=1e-10)
    zero = spherical_harmonics_numpy("0e + 1o + 2e", np.zeros((2, 3)), normalization)
    assert zero[:, 0].min() > 0 and np.all(zero[:, 1:] == 0)


def test_degree_lists_and_irreps_match_e3nn(o3_ref):
    x = o3_ref["sh_vectors"]
    got = spherical_harmonics([3, 1, 3, 0], x)
    np.testing.assert_allclose(ops.convert_to_numpy(got), o3_ref["sh_list_3_1_3_0"], atol=1e-10)
    got = spherical_harmonics("0e+1e+2e", x, normalization="norm")
    np.testing.assert_allclose(ops.convert_to_numpy(got), o3_ref["sh_irreps_pseudo"], atol=1e-10)
    assert sh_irreps("0e + 1o + 2e")[0] == "0e+1o+2e"
    assert sh_irreps([2, 2, 0])[0] == "2x2e+0e"
    assert sh_irreps(3)[1] == [3]


def test_l1_is_xyz_and_first_values():
    x = np.array([[0.3, -1.2, 2.0]])
    y = ops.convert_to_numpy(spherical_harmonics([0, 1], x, normalize=False))
    np.testing.assert_allclose(y, np.concatenate([[[1.0]], np.sqrt(3) * x], axis=-1), atol=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_equivariant_to_l20(normalize):
    ls = list(range(21))
    irreps = sh_irreps(ls)[0]
    assert irreps.lmax == 20
    errors = assert_equivariant(
        lambda v: spherical_harmonics(ls, v, normalize=normalize),
        ["cartesian_vectors"],
        [irreps],
        n_trials=3,
        seed=0,
        atol=1e-8,
        rtol=1e-12,
        batch=16,
    )
    assert max(v for k, v in errors.items() if k != "scale") < 1e-8 * max(1.0, errors["scale"] * 1e-4)


def test_pseudovector_harmonics_are_even():
    # harmonics of a pseudovector (irreps all even) transform with 1e: a vector argument transforms
    # as 1o, so under inversion the odd degrees must NOT flip sign for the pseudovector reading
    assert_equivariant(lambda v: spherical_harmonics("0e+1e+2e+3e", v), ["1e"], ["0e+1e+2e+3e"], seed=1)


def test_norms_per_normalization():
    x = np.random.default_rng(0).normal(size=(100, 3))
    for normalization, expected in [("component", lambda l: 2 * l + 1), ("norm", lambda l: 1.0), ("integral", lambda l: (2 * l + 1) / (4 * np.pi))]:
        y = ops.convert_to_numpy(spherical_harmonics(list(range(21)), x, normalization=normalization))
        for l in range(21):
            block = y[:, l * l : (l + 1) * (l + 1)]
            np.testing.assert_allclose((block**2).sum(-1), expected(l), rtol=1e-11)


def test_orthogonality_on_the_sphere():
    # Lebedev-free check: Monte Carlo mean of Y Y^T over many points is the identity (component)
    x = np.random.default_rng(1).normal(size=(200000, 3))
    y = ops.convert_to_numpy(spherical_harmonics(list(range(4)), x))
    np.testing.assert_allclose(y.T @ y / len(x), np.eye(16), atol=0.03)


@requires_tf
def test_zero_vector_finite_values_and_gradients():
    import tensorflow as tf

    x = tf.Variable(np.array([[0.0, 0.0, 0.0], [1e-30, 0.0, 0.0], [0.1, 0.2, 0.3]]))
    for normalize in [False, True]:
        with tf.GradientTape() as tape:
            y = spherical_harmonics(list(range(9)), x, normalize=normalize)
            loss = tf.reduce_sum(tf.sin(y))
        g = tape.gradient(loss, x).numpy()
        y = y.numpy()
        assert np.isfinite(y).all() and np.isfinite(g).all()
        np.testing.assert_allclose(y[0], np.eye(81)[0], atol=0)  # 1 for l = 0, 0 for l > 0
    # normalised: the direction of the zero vector is undefined and its gradient is set to zero
    np.testing.assert_allclose(g[0], 0.0, atol=0)


@requires_tf
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtypes_and_xla(dtype):
    import tensorflow as tf

    x = np.random.default_rng(2).normal(size=(64, 3)).astype(dtype)
    f = tf.function(lambda v: spherical_harmonics(list(range(9)), v), jit_compile=True)
    eager = spherical_harmonics(list(range(9)), x)
    compiled = f(x)
    assert eager.dtype == compiled.dtype == dtype
    np.testing.assert_allclose(compiled.numpy(), eager.numpy(), atol=1e-5 if dtype == "float32" else 1e-12)
    ref = spherical_harmonics(list(range(9)), x.astype("float64")).numpy()
    np.testing.assert_allclose(compiled.numpy(), ref, atol=2e-5 if dtype == "float32" else 1e-12)


@requires_tf
def test_xla_gradient_and_batch_shapes():
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(3).normal(size=(2, 5, 3)))

    @tf.function(jit_compile=True)
    def grad(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            y = spherical_harmonics("0e+1o+2e+4e", v)
            loss = tf.reduce_sum(y**2)
        return y, tape.gradient(loss, v)

    y, g = grad(x)
    assert y.shape == (2, 5, 1 + 3 + 5 + 9)
    # |Y|^2 is constant on the sphere and the input is normalised: the gradient vanishes
    np.testing.assert_allclose(g.numpy(), 0.0, atol=1e-12)


def test_integer_input_and_errors():
    y = spherical_harmonics(1, [[1, 0, 0]])
    assert "float" in str(y.dtype)
    with pytest.raises(ValueError, match="normalization"):
        spherical_harmonics(1, [[1.0, 0.0, 0.0]], normalization="bogus")
    with pytest.raises(ValueError, match="shape"):
        spherical_harmonics(1, [[1.0, 0.0]])
    with pytest.raises(ValueError, match="parity"):
        spherical_harmonics("1o + 1e", [[1.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="non-negative"):
        spherical_harmonics([-1], [[1.0, 0.0, 0.0]])


@pytest.mark.slow  # CI's second pass runs tests/ops on the JAX backend itself
@pytest.mark.skipif(__import__("importlib").util.find_spec("jax") is None or keras.backend.backend() == "jax", reason="needs jax; already on the jax backend")
def test_runs_on_jax_backend(o3_ref, tmp_path):
    np.save(tmp_path / "x.npy", o3_ref["sh_vectors"])
    code = f"""
import numpy as np, jax, keras
jax.config.update("jax_enable_x64", True)
assert keras.backend.backend() == "jax"
from kerase3.ops import spherical_harmonics
x = np.load({str(tmp_path / "x.npy")!r})
f = jax.jit(lambda v: spherical_harmonics(list(range(13)), v, normalization="integral"))
y = f(x)
g = jax.grad(lambda v: (spherical_harmonics(list(range(5)), v) ** 2).sum())(np.zeros((2, 3)))
assert np.isfinite(np.asarray(g)).all()
np.save({str(tmp_path / "y.npy")!r}, np.asarray(y))
"""
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), o3_ref["sh_integral_1"], atol=1e-10)
