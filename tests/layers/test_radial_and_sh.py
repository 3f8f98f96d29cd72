import numpy as np
import pytest
from keras import ops

from kerase3 import layers
from kerase3.ops import radial
from kerase3.testing import assert_equivariant, check_layer


RNG = np.random.default_rng(3)


@pytest.mark.parametrize("kwargs", [dict(hs=[4, 16, 8, 3], act="silu"), dict(hs=[3, 10, 2], act="tanh", out_act=True),
                                    dict(hs=[5, 2])])
def test_fully_connected_net(kwargs):
    x = RNG.normal(size=(8, kwargs["hs"][0]))
    check_layer(layers.FullyConnectedNet, kwargs, [x], (8, kwargs["hs"][-1]))
    # invariant (scalars in, scalars out)
    net = layers.FullyConnectedNet(**kwargs, dtype="float64")
    assert_equivariant(lambda a: net(a), [f"{kwargs['hs'][0]}x0e"], [f"{kwargs['hs'][-1]}x0e"], [x], seed=0)


def _nested_grads(f, params, x, v, r):
    """``f(params, x)``, ``d<v, f>/d(x, params)`` and ``d<r, (d<v, f>/dx)^2>/d(x, params)``, traced as
    in training (``tf.function`` with nested tapes, ``jax.jit`` of nested ``jax.grad``)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax
        import jax.numpy as jnp

        def first(ps, a):
            return jnp.sum(v * f(ps, a))

        def second(ps, a):
            return jnp.sum(r * jax.grad(first, argnums=1)(ps, a) ** 2)

        run = jax.jit(lambda ps, a: (f(ps, a), jax.grad(first, argnums=(1, 0))(ps, a), jax.grad(second, argnums=(1, 0))(ps, a)))
        out, (gx, gp), (hx, hp) = run([jnp.asarray(p) for p in params], jnp.asarray(x))
        return [np.asarray(t) for t in [out, gx, *gp, hx, *hp]]
    import tensorflow as tf

    @tf.function
    def run(ps, a):
        with tf.GradientTape(persistent=True) as outer:
            outer.watch([a] + ps)
            with tf.GradientTape() as inner:
                inner.watch([a] + ps)
                out = f(ps, a)
                en = tf.reduce_sum(v * out)
            g = inner.gradient(en, [a] + ps)
            loss = tf.reduce_sum(r * g[0] ** 2)
        return [out] + g + outer.gradient(loss, [a] + ps)

    return [t.numpy() for t in run([tf.constant(p) for p in params], tf.constant(x))]


@pytest.mark.parametrize("kwargs", [dict(hs=[4, 16, 8, 3], act="silu"), dict(hs=[3, 10, 2], act="tanh", out_act=True)])
def test_fully_connected_net_derivatives_equal_automatic_differentiation(kwargs):
    """The hidden layers' derivative (which forms ``x @ W`` again instead of keeping it from the
    forward pass) equals automatic differentiation of the plain formula, to first and second
    order, with respect to the input and the weights, for inputs with two batch axes."""
    from kerase3.ops.activations import normalize2mom

    net = layers.FullyConnectedNet(**kwargs, dtype="float64")
    hs = kwargs["hs"]
    net.build((None, hs[0]))
    params = [np.asarray(ops.convert_to_numpy(k)) for k in net.kernels]
    fn, cst = normalize2mom(kwargs["act"])
    x = RNG.normal(size=(3, 5, hs[0]))
    v, r = RNG.normal(size=(3, 5, hs[-1])), RNG.normal(size=(3, 5, hs[0]))

    def plain(ps, a):
        for i, w in enumerate(ps):
            a = ops.matmul(a, w / np.sqrt(hs[i]))
            if i < len(ps) - 1 or kwargs.get("out_act"):
                a = fn(a) * cst
        return a

    def as_layer(ps, a):  # the kernels as traced values: call the layer's own code path on them
        saved = net.kernels
        net.kernels = list(ps)
        try:
            return net(a)
        finally:
            net.kernels = saved

    got = _nested_grads(as_layer, params, x, v, r)
    want = _nested_grads(plain, params, x, v, r)
    assert len(got) == len(want) == 3 + 2 * len(params)
    for k, (a, b) in enumerate(zip(got, want)):
        assert np.abs(b).max() > 1e-3, k
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * max(1.0, np.abs(b).max()), err_msg=str(k))


def test_fully_connected_net_second_moment_and_errors():
    net = layers.FullyConnectedNet([16, 64, 64, 16], "silu", dtype="float64")
    y = ops.convert_to_numpy(net(RNG.normal(size=(4000, 16))))
    assert 0.7 < np.mean(y**2) < 1.4
    with pytest.raises(ValueError, match="FullyConnectedNet: input must have 16 features"):
        net(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least"):
        layers.FullyConnectedNet([3])


@pytest.mark.parametrize("kwargs", [dict(number=8, max_radius=3.0), dict(number=6, max_radius=2.5, basis="smooth_finite", cutoff=True),
                                    dict(number=5, max_radius=4.0, basis="gaussian", cutoff=None, trainable=True)])
def test_radial_basis(kwargs):
    r = np.concatenate([[0.0, 1e-9], RNG.uniform(0, 4.5, size=30)])
    check_layer(layers.RadialBasis, kwargs, [r], (32, kwargs["number"]))
    y = ops.convert_to_numpy(layers.RadialBasis(**kwargs, dtype="float64")(r))
    assert y.shape == (32, kwargs["number"]) and np.isfinite(y).all()
    if kwargs.get("cutoff", "polynomial") in ("polynomial", True):
        np.testing.assert_allclose(y[r >= kwargs["max_radius"]], 0.0, atol=1e-12)


def test_radial_functions_smooth_and_finite_at_zero():
    import keras

    r = np.array([0.0, 0.5, 1.0, 1.999, 2.0, 2.5])
    b = ops.convert_to_numpy(radial.bessel_basis(r, 2.0, 4))
    np.testing.assert_allclose(b[0], np.arange(1, 5) * np.pi * 2 / 2.0**2, rtol=1e-6)  # the r -> 0 limit
    env = ops.convert_to_numpy(radial.polynomial_cutoff(r, 2.0, p=6))
    assert env[0] == 1.0 and env[4] == 0.0 and env[5] == 0.0 and 0 < env[3] < 1e-6
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.Variable([0.0, 1.0, 3.0])
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(radial.bessel_basis(x, 2.0, 4) * radial.polynomial_cutoff(x, 2.0)[:, None])
        assert np.isfinite(tape.gradient(y, x).numpy()).all()
    with pytest.raises(ValueError, match="basis"):
        radial.soft_one_hot_linspace(r, 0.0, 1.0, 3, basis="bogus")


@pytest.mark.parametrize("kwargs", [dict(irreps_out=3), dict(irreps_out="0e+1o+2e+4e", normalization="norm"),
                                    dict(irreps_out="1e+2e", normalize=False)])
def test_spherical_harmonics_layer(kwargs):
    v = RNG.normal(size=(7, 3))
    check_layer(layers.SphericalHarmonics, kwargs, [v], (7, {3: 16, "0e+1o+2e+4e": 18, "1e+2e": 8}[kwargs["irreps_out"]]))
    layer = layers.SphericalHarmonics(**kwargs, dtype="float64")
    vin = "1e" if kwargs["irreps_out"] == "1e+2e" else "cartesian_vectors"
    assert_equivariant(lambda a: layer(a), [vin], [layer.irreps_out], [v], seed=1)
    with pytest.raises(ValueError, match=r"SphericalHarmonics: input must have shape \(..., 3\)"):
        layer(np.zeros((2, 4)))


def test_spherical_harmonics_stays_float32_under_mixed_precision():
    layer = layers.SphericalHarmonics(2, dtype="mixed_bfloat16")
    assert layer.compute_dtype == "bfloat16"  # explicit dtype is respected
    import keras

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        auto = layers.SphericalHarmonics(2)
        assert auto.compute_dtype == "float32"
    finally:
        keras.config.set_dtype_policy("float32")


def test_xplor_switch_values_and_smoothness():
    """The XPLOR switching function (SevenNet's cutoff): its formula, 1 before r_on, 0 from r_max,
    value and slope continuous at both ends; as a RadialBasis / EdgeEmbedding option."""
    from kerase3.layers import EdgeEmbedding, RadialBasis
    from kerase3.ops import xplor_cutoff

    r_on, r_max = 4.5, 5.0
    r = np.linspace(0.0, 6.0, 601)
    got = np.asarray(xplor_cutoff(r, r_on, r_max))
    mid = (r >= r_on) & (r < r_max)
    want = (r_max**2 - r**2) ** 2 * (r_max**2 + 2 * r**2 - 3 * r_on**2) / (r_max**2 - r_on**2) ** 3
    np.testing.assert_allclose(got[mid], want[mid], rtol=1e-12)
    assert np.all(got[r < r_on] == 1.0) and np.all(got[r >= r_max] == 0.0)
    h = 1e-6
    for at in (r_on, r_max):
        left, right = np.asarray(xplor_cutoff(np.array([at - h, at + h]), r_on, r_max))
        assert abs(left - right) < 1e-5  # continuous value
        slopes = [(np.asarray(xplor_cutoff(np.array([x + 1e-8]), r_on, r_max))[0] -
                   np.asarray(xplor_cutoff(np.array([x - 1e-8]), r_on, r_max))[0]) / 2e-8 for x in (at - 1e-5, at + 1e-5)]
        assert abs(slopes[0] - slopes[1]) < 1e-2  # continuous slope (zero at both ends)
    with pytest.raises(ValueError, match="r_on"):
        xplor_cutoff(r, 5.0, 5.0)
    rb = RadialBasis(8, 5.0, cutoff="xplor", r_on=4.5, trainable=True, dtype="float64")
    out = np.asarray(rb(np.array([1.0, 4.75, 5.2])))
    plain = np.asarray(RadialBasis(8, 5.0, cutoff=None, dtype="float64")(np.array([1.0, 4.75, 5.2])))
    np.testing.assert_allclose(out, plain * np.asarray(xplor_cutoff(np.array([1.0, 4.75, 5.2]), 4.5, 5.0))[:, None], atol=1e-12)
    assert [w.name for w in rb.trainable_weights] == ["freqs"]
    assert RadialBasis.from_config(rb.get_config()).get_config() == rb.get_config()
    emb = EdgeEmbedding(2, 8, 5.0, radial_cutoff="xplor", radial_r_on=4.5, trainable_basis=True)
    assert EdgeEmbedding.from_config(emb.get_config()).radial.r_on == 4.5
    with pytest.raises(ValueError, match="r_on"):
        RadialBasis(8, 5.0, cutoff="xplor", r_on=5.5)
