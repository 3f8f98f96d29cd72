"""The convolution product's hand-written gradient equals automatic differentiation of
the general code, to first and second order (forces in a loss), on every backend."""

import keras
import numpy as np
import pytest

from kerase3.o3 import Irreps
from kerase3.ops import TensorProductPlan, tensor_product

BACKEND = keras.backend.backend()


@pytest.fixture(autouse=True)
def _forms_as_asked(kernel_opts):
    """The tests pick the kernel's forms (`kernel_options`: ``compact_max_rows``, ``edge_chunk``); a TensorFlow graph traced
    without XLA would otherwise take the executor's forms (``whole_edges_without_xla``), tested on
    their own in `test_forms_follow_where_the_graph_runs`."""
    kernel_opts(whole_edges_without_xla=False)


def _conv_plan(irreps_in1, irreps_sh, lmax_out, sh_major=False):
    i1, i2 = Irreps(irreps_in1), Irreps(irreps_sh)
    out, instr = [], []
    pairs = [(a, b) for a in range(len(i1)) for b in range(len(i2))]
    for a, b in sorted(pairs, key=lambda ab: ab[::-1]) if sh_major else pairs:
        (mul, r1), (_, r2) = i1[a], i2[b]
        for ro in r1 * r2:
            if ro.l <= lmax_out:
                instr.append((a, b, len(out), "uvu", True))
                out.append((mul, ro))
    return str(i1), str(i2), str(Irreps(out)), instr


CASES = [
    ("4x0e+3x1o+2x2e", "0e+1o", 2),
    ("2x0e+2x1e+1x2o", "1x0e+1x1o", 3),  # mixed multiplicities and parities
    ("3x0e+2x1o+2x2e", "0e+1o+2e", 2, True),  # paths ordered by harmonic: weights not in block order
]


def _plans(case):
    args = _conv_plan(*case)
    fast, general = TensorProductPlan(*args), TensorProductPlan(*args, kernel="general")
    assert fast.kernel == "coupled" and general.kernel == "general"
    return fast, general


def _data(plan, shared, n=7, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=(n, plan.irreps_in1.dim))
    x2 = rng.normal(size=(n, plan.irreps_in2.dim))
    w = rng.normal(size=(plan.weight_numel,) if shared else (n, plan.weight_numel))
    v = rng.normal(size=(n, plan.irreps_out.dim))
    r = rng.normal(size=(n, plan.irreps_in2.dim))
    return x1, x2, w, v, r


def _grads(plan, shared, x1, x2, w, v, r, traced=True):
    """(d/d(x1, x2, w) of <v, TP>, d/d(x1, x2, w) of <r, (d<v, TP>/dx2)^2>), traced as in training
    (``tf.function`` with nested tapes, ``jax.jit`` of nested ``jax.grad``)."""

    if BACKEND == "jax":
        import jax

        def energy(a, b, c):
            return jax.numpy.sum(v * tensor_product(plan, a, b, c, shared_weights=shared))

        jit = jax.jit if traced else (lambda f: f)
        g1 = jit(jax.grad(energy, argnums=(0, 1, 2)))(x1, x2, w)

        def loss(a, b, c):
            return jax.numpy.sum(r * jax.grad(energy, argnums=1)(a, b, c) ** 2)

        g2 = jit(jax.grad(loss, argnums=(0, 1, 2)))(x1, x2, w)
        return [np.asarray(t) for t in g1], [np.asarray(t) for t in g2]

    import tensorflow as tf

    def both(a, b, c):
        with tf.GradientTape() as outer:
            outer.watch([a, b, c])
            with tf.GradientTape() as inner:
                inner.watch([a, b, c])
                e = tf.reduce_sum(v * tensor_product(plan, a, b, c, shared_weights=shared))
            g1 = inner.gradient(e, [a, b, c], unconnected_gradients=tf.UnconnectedGradients.ZERO)
            loss = tf.reduce_sum(r * g1[1] ** 2)
        return g1, outer.gradient(loss, [a, b, c], unconnected_gradients=tf.UnconnectedGradients.ZERO)

    g1, g2 = (tf.function(both) if traced else both)(*(tf.constant(t) for t in (x1, x2, w)))
    return [t.numpy() for t in g1], [t.numpy() for t in g2]


@pytest.mark.parametrize("compact", [True, False])
@pytest.mark.parametrize("case, shared", [(CASES[0], False), (CASES[1], True), (CASES[2], False), (CASES[2], True)])
def test_gradients_equal_automatic_differentiation(case, shared, compact, kernel_opts):
    """Both forms of the kernel (``compact_max_rows``: seven rows are compact unless it is 0)."""
    if BACKEND != "tensorflow" and case is CASES[2]:
        pytest.skip("on this backend the first two cases (weights per edge and shared) keep the suite short")
    kernel_opts(compact_max_rows=512 if compact else 0)
    fast, general = _plans(case)
    assert (fast.coupled_tables.wperm is not None) == (len(case) == 4)
    data = _data(fast, shared)
    x1, x2, w = data[:3]
    out_fast = keras.ops.convert_to_numpy(tensor_product(fast, x1, x2, w, shared_weights=shared))
    out_general = keras.ops.convert_to_numpy(tensor_product(general, x1, x2, w, shared_weights=shared))
    np.testing.assert_allclose(out_fast, out_general, rtol=0, atol=1e-12)
    g1f, g2f = _grads(fast, shared, *data)
    g1g, g2g = _grads(general, shared, *data, traced=BACKEND == "jax")  # TF reference eagerly (quicker)
    for k, (a, b) in enumerate(zip(g1f + g2f, g1g + g2g)):
        assert a.shape == b.shape
        if k != 4:  # the product is linear in x2: its second derivative in x2 is zero
            assert np.abs(b).max() > 1e-3  # the check is not vacuous
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * max(1.0, np.abs(b).max()))


def test_broadcast_batch_axes_and_empty_batch():
    fast, general = _plans(CASES[0])
    rng = np.random.default_rng(1)
    x1 = rng.normal(size=(3, 1, fast.irreps_in1.dim))
    x2 = rng.normal(size=(1, 4, fast.irreps_in2.dim))
    w = rng.normal(size=(3, 4, fast.weight_numel))
    a = keras.ops.convert_to_numpy(tensor_product(fast, x1, x2, w, shared_weights=False))
    b = keras.ops.convert_to_numpy(tensor_product(general, x1, x2, w, shared_weights=False))
    assert a.shape == (3, 4, fast.irreps_out.dim)
    np.testing.assert_allclose(a, b, atol=1e-12)
    empty = tensor_product(fast, np.zeros((0, fast.irreps_in1.dim)), np.zeros((0, fast.irreps_in2.dim)),
                           np.zeros((0, fast.weight_numel)), shared_weights=False)
    assert tuple(empty.shape) == (0, fast.irreps_out.dim)


def _jax_energy_and_loss(call, v, r):
    """JAX: ``<v, call(args)>`` and the forces-like ``<r, (d/de of it)^2>`` as functions of the args."""
    import jax

    def energy(*a):
        return jax.numpy.sum(v * call(a))

    def loss(*a):
        return jax.numpy.sum(r * jax.grad(energy, argnums=1)(*a) ** 2)

    return energy, loss


def _scatter_grads(plan, x, e, w, senders, receivers, v, r, dynamic=False, W=None):
    """Node sums of the messages, and first and second derivatives (forces-like) of them
    (``dynamic``: TensorFlow traces with the edge count unknown; ``W``: the weights are ``w @ W``,
    derivatives also with respect to ``W``)."""
    from kerase3.ops import scatter_tensor_product

    n = x.shape[0]
    args = (x, e, w) if W is None else (x, e, w, W)
    nargs = len(args)

    def call(a, s_=senders, r_=receivers):
        return scatter_tensor_product(plan, a[0], a[1], a[2], s_, r_, n, weight_matrix=a[3] if nargs == 4 else None)

    if BACKEND == "jax":
        import jax

        energy, loss = _jax_energy_and_loss(call, v, r)
        out = call(args)
        g1 = jax.jit(jax.grad(energy, argnums=tuple(range(nargs))))(*args)
        g2 = jax.jit(jax.grad(loss, argnums=tuple(range(nargs))))(*args)
        return [np.asarray(out)] + [np.asarray(t) for t in g1 + g2]
    import tensorflow as tf

    spec = [tf.TensorSpec((None,) + t.shape[1:], tf.float64) for t in args[:3]] + [tf.TensorSpec(t.shape, tf.float64) for t in args[3:]]

    @tf.function(input_signature=spec if dynamic else None)
    def both(*a):
        a = list(a)
        with tf.GradientTape() as outer:
            outer.watch(a)
            with tf.GradientTape() as inner:
                inner.watch(a)
                s_, r_ = senders, receivers
                if dynamic:  # index arrays of the traced edge count
                    s_, r_ = tf.constant(senders)[: tf.shape(a[1])[0]], tf.constant(receivers)[: tf.shape(a[1])[0]]
                out = call(a, s_, r_)
                en = tf.reduce_sum(v * out)
            g1 = inner.gradient(en, a, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            loss = tf.reduce_sum(r * g1[1] ** 2)
        return [out] + g1 + outer.gradient(loss, a, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    return [tf.convert_to_tensor(t).numpy() for t in both(*(tf.constant(t) for t in args))]


@pytest.mark.parametrize("case, chunk, dynamic, factored, compact", [
    (CASES[0], 0, False, False, True), (CASES[1], 0, False, False, True), (("4x0e+3x1o+2x2e", "0e+1o", 0), 0, False, False, True),
    (CASES[2], 0, False, False, False), (CASES[1], 0, False, True, False),  # no loop, not compact (compact_max_rows 0)
    (CASES[0], 4, False, False, True),  # 11 edges in blocks of 4: the last block overlaps the previous one
    (CASES[2], 3, False, False, True), (CASES[1], 11, False, False, True),  # as many edges as a block: no loop
    (CASES[0], 4, True, False, True),  # edge count unknown when traced (TensorFlow): padded to whole blocks
    (CASES[2], 4, False, True, True), (CASES[1], 0, False, True, True),  # weights h @ W (a radial network's last layer)
    (CASES[0], 4, True, True, True),
])
def test_scatter_tensor_product_equals_messages_summed(case, chunk, dynamic, factored, compact, kernel_opts):
    """Node sums of coupled-kernel messages (kernel layout, reordered per node) equal the general
    kernel's messages summed, with first and second derivatives, whether the edges are taken all
    at once (``chunk`` 0: the compact form, or with ``compact`` off the form the loop's blocks
    use) or a block at a time, with per-edge weights or per-edge features times a weight matrix;
    an input block that reaches no output (third case: 2e x (0e + 1o) has no
    l = 0) gets a zero gradient."""
    if BACKEND != "tensorflow" and (dynamic or chunk not in (0, 4) or not (chunk or factored)):
        # edge counts are always known when JAX traces; the one-piece path runs in every model test
        pytest.skip("covered on this backend by the looped and factored cases")
    kernel_opts(edge_chunk=chunk)
    kernel_opts(loop_min_edges=0)
    kernel_opts(compact_max_rows=512 if compact else 0)
    fast, general = _plans(case)
    rng = np.random.default_rng(3)
    n_nodes, n_edges = 5, 11
    x = rng.normal(size=(n_nodes, fast.irreps_in1.dim))
    e = rng.normal(size=(n_edges, fast.irreps_in2.dim))
    w = rng.normal(size=(n_edges, fast.weight_numel))
    senders, receivers = rng.integers(0, n_nodes, n_edges), rng.integers(0, n_nodes - 1, n_edges)  # last node isolated
    v = rng.normal(size=(n_nodes, fast.irreps_out.dim))
    r = rng.normal(size=(n_edges, fast.irreps_in2.dim))
    W = None
    if factored:
        w, W = rng.normal(size=(n_edges, 5)), rng.normal(size=(5, fast.weight_numel)) / 3
    a = _scatter_grads(fast, x, e, w, senders, receivers, v, r, dynamic=dynamic, W=W)
    b = _scatter_grads(general, x, e, w, senders, receivers, v, r, W=W)
    nargs = 3 if W is None else 4
    assert np.abs(a[0][-1]).max() == 0  # the isolated node receives nothing
    for k, (p, q) in enumerate(zip(a, b)):
        assert p.shape == q.shape
        if k != 2 + nargs:  # linear in the edge features: no second derivative there
            assert np.abs(q).max() > 1e-3
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-10 * max(1.0, np.abs(q).max()))
    if case[2] == 0:
        two_e = fast.irreps_in1.slices()[2]
        assert np.abs(a[1][:, two_e]).max() == 0


def _third_order(call, args, v, r, q):
    """d/d(args) of ``<q, d/dx <r, (d<v, call(args)>/de)^2>>`` (``args = (x, e, ...)``): a third derivative."""
    if BACKEND == "jax":
        import jax

        _, loss = _jax_energy_and_loss(call, v, r)

        def third(*a):
            return jax.numpy.sum(q * jax.grad(loss, argnums=0)(*a))

        return [np.asarray(t) for t in jax.jit(jax.grad(third, argnums=tuple(range(len(args)))))(*args)]
    import tensorflow as tf

    @tf.function
    def grads(*a):
        a = list(a)
        with tf.GradientTape() as t3:
            t3.watch(a)
            with tf.GradientTape() as t2:
                t2.watch(a)
                with tf.GradientTape() as t1:
                    t1.watch(a)
                    en = tf.reduce_sum(v * call(a))
                loss = tf.reduce_sum(r * t1.gradient(en, a[1]) ** 2)
            third = tf.reduce_sum(q * tf.convert_to_tensor(t2.gradient(loss, a[0])))
        return t3.gradient(third, a, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    return [tf.convert_to_tensor(t).numpy() for t in grads(*(tf.constant(t) for t in args))]


def test_third_derivatives_in_edge_blocks_equal_automatic_differentiation(kernel_opts):
    """A second derivative's products and partials run in one loop over blocks of edges, with a
    gradient of its own: third derivatives through it equal automatic differentiation of the
    general kernel, as do those of the product alone (on JAX they were zeros while the partials'
    forward computations stopped the gradient of their inputs)."""
    from kerase3.ops import scatter_tensor_product

    kernel_opts(edge_chunk=4)
    kernel_opts(loop_min_edges=0)
    fast, general = _plans(("2x0e+2x1o", "0e+1o", 1))  # small: third derivatives trace deep
    rng = np.random.default_rng(5)
    n_nodes, n_edges = 5, 11
    x = rng.normal(size=(n_nodes, fast.irreps_in1.dim))
    e = rng.normal(size=(n_edges, fast.irreps_in2.dim))
    h, W = rng.normal(size=(n_edges, 5)), rng.normal(size=(5, fast.weight_numel)) / 3
    senders, receivers = rng.integers(0, n_nodes, n_edges), rng.integers(0, n_nodes, n_edges)
    v = rng.normal(size=(n_nodes, fast.irreps_out.dim))
    r = rng.normal(size=(n_edges, fast.irreps_in2.dim))
    q = rng.normal(size=x.shape)
    def scattered(plan):
        return lambda a: scatter_tensor_product(plan, a[0], a[1], a[2], senders, receivers, n_nodes, weight_matrix=a[3])

    def per_edge(plan):  # the product alone (no loop, no joint computation)
        return lambda a: tensor_product(plan, a[0], a[1], a[2], shared_weights=False)

    x1 = rng.normal(size=(n_edges, fast.irreps_in1.dim))
    w = rng.normal(size=(n_edges, fast.weight_numel))
    v1, q1 = rng.normal(size=(n_edges, fast.irreps_out.dim)), rng.normal(size=x1.shape)
    checks = [(scattered, (x, e, h, W), v, q)]
    if BACKEND == "jax":  # where the product's third derivatives were zeros (TensorFlow: 10 s more tracing)
        checks.append((per_edge, (x1, e, w), v1, q1))
    for make, args, vv, qq in checks:
        a = _third_order(make(fast), args, vv, r, qq)
        b = _third_order(make(general), args, vv, r, qq)
        for k, (p, t) in enumerate(zip(a, b)):
            assert (np.abs(t).max() > 1e-3) == (k != 1)  # linear in e, and e is not in d/de: no e here
            np.testing.assert_allclose(p, t, rtol=0, atol=1e-10 * max(1.0, np.abs(t).max()))


def test_forms_follow_where_the_graph_runs(kernel_opts):
    """TensorFlow: a graph traced for XLA loops over blocks of edges; one traced without XLA (as
    exported for TF Serving) takes all edges at once in the compact form, with no op that only
    XLA runs; both give the general kernel's node sums and gradients."""
    if BACKEND != "tensorflow":
        pytest.skip("JAX always compiles with XLA")
    import tensorflow as tf

    from kerase3.ops import scatter_tensor_product

    kernel_opts(whole_edges_without_xla=True)
    kernel_opts(edge_chunk=4)
    fast, general = _plans(CASES[0])
    rng = np.random.default_rng(5)
    x = tf.constant(rng.normal(size=(5, fast.irreps_in1.dim)))
    e = tf.constant(rng.normal(size=(11, fast.irreps_in2.dim)))
    w = tf.constant(rng.normal(size=(11, fast.weight_numel)))
    s, r = tf.constant(rng.integers(0, 5, 11), tf.int32), tf.constant(rng.integers(0, 5, 11), tf.int32)
    v = tf.constant(rng.normal(size=(5, fast.irreps_out.dim)))

    def energy_and_grads(plan):
        def fn(x, e, w, s, r):
            with tf.GradientTape() as tape:
                tape.watch([x, e, w])
                en = tf.reduce_sum(v * scatter_tensor_product(plan, x, e, w, s, r, 5))
            return [en] + [tf.convert_to_tensor(g) for g in tape.gradient(en, [x, e, w])]
        return fn

    spec = [tf.TensorSpec((None,) + tuple(t.shape[1:]), tf.float64) for t in (x, e, w)] + [tf.TensorSpec((None,), tf.int32)] * 2
    ref = [t.numpy() for t in energy_and_grads(general)(x, e, w, s, r)]
    for jit in (False, True):
        fn = tf.function(energy_and_grads(fast), input_signature=spec, jit_compile=jit)
        graph = fn.get_concrete_function().graph
        ops_used = {op.type for op in graph.get_operations()}
        for f in graph.as_graph_def().library.function:
            ops_used.update(n.op for n in f.node_def)
        assert any("While" in op for op in ops_used) == jit, sorted(ops_used)
        assert not [op for op in ops_used if op.startswith("Xla")], sorted(ops_used)
        for a, b in zip(fn(x, e, w, s, r), ref):
            np.testing.assert_allclose(a.numpy(), b, rtol=0, atol=1e-10 * max(1.0, np.abs(b).max()))
