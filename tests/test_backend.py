"""`kerase3.backend.einsum` equals numpy's einsum, with shapes known or unknown when traced, and
its gradient equals numpy's; on TensorFlow it traces no ``Einsum`` op (lowered by a slow
per-op pass pipeline) for the contractions the kernels use. `return_freed_memory` switches
glibc's malloc on and off."""

import platform

import keras
import numpy as np
import pytest

from kerase3 import backend

CASES = [
    ("zpu,pk->zku", (7, 3, 4), (3, 5)),
    ("zku,pk->zpu", (7, 5, 4), (3, 5)),
    ("zik,zku->ziu", (7, 3, 5), (7, 5, 4)),
    ("ziu,zku->zik", (7, 3, 4), (7, 5, 4)),
    ("zqk,zqw->zwk", (6, 4, 3), (6, 4, 2)),
    ("ni,nij->nj", (5, 3), (5, 3, 3)),
    ("gij,gjk->gik", (2, 3, 3), (2, 3, 3)),
    ("ei,eij->ej", (4, 3), (4, 3, 3)),
    ("zdu,zuw->zdw", (6, 3, 4), (6, 4, 5)),
    ("ab,cd->dacb", (2, 3), (4, 5)),  # outer product, output permuted
    ("abc,c->", (2, 3, 4), (4,)),  # a and b summed alone, full contraction
    ("ij,jk->ki", (3, 4), (4, 2)),
]


def _data(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) for s in shapes]


@pytest.mark.parametrize("spec,sa,sb", CASES)
def test_einsum_equals_numpy(spec, sa, sb):
    a, b = _data([sa, sb])
    out = keras.ops.convert_to_numpy(backend.einsum(spec, a, b))
    np.testing.assert_allclose(out, np.einsum(spec, a, b), rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="traced TensorFlow graphs")
@pytest.mark.parametrize("spec,sa,sb", CASES)
def test_einsum_with_unknown_sizes_and_its_gradient(spec, sa, sb):
    import tensorflow as tf

    a, b = _data([sa, sb], seed=1)
    g = _data([np.einsum(spec, a, b).shape], seed=2)[0]
    # every size unknown when traced
    specs = [tf.TensorSpec([None] * len(sa), tf.float64), tf.TensorSpec([None] * len(sb), tf.float64)]

    @tf.function(input_signature=specs, jit_compile=True)
    def f(x, y):
        with tf.GradientTape() as tape:
            tape.watch([x, y])
            out = backend.einsum(spec, x, y)
            loss = tf.reduce_sum(out * g)
        return (out,) + tuple(tape.gradient(loss, [x, y]))

    out, da, db = (t.numpy() for t in f(a, b))
    np.testing.assert_allclose(out, np.einsum(spec, a, b), rtol=1e-12, atol=1e-12)
    # d<g, einsum(a, b)>/da is the einsum of g and b into a's indices (ones: indices of a alone)
    lhs, res = spec.split("->")
    ia, ib = lhs.split(",")
    np.testing.assert_allclose(da, np.einsum(f"{res},{ib},{ia}->{ia}", g, b, np.ones_like(a)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, np.einsum(f"{res},{ia},{ib}->{ib}", g, a, np.ones_like(b)), rtol=1e-12, atol=1e-12)
    graph = f.get_concrete_function().graph.as_graph_def()
    types = {n.op for n in graph.node} | {n.op for fn in graph.library.function for n in fn.node_def}
    assert "Einsum" not in types


def test_einsum_falls_back_for_other_forms():
    a = _data([(3, 3)])[0]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(backend.einsum("ii->i", a)), np.diag(a), rtol=1e-12)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(backend.einsum("ij,jk,kl->il", a, a, a)), a @ a @ a, rtol=1e-12)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_return_freed_memory_switches_on_and_off(monkeypatch):
    monkeypatch.delenv("KERASE3_RETURN_FREED_MEMORY", raising=False)
    assert backend.return_freed_memory(True) is True
    assert backend.return_freed_memory(False) is True
    assert backend.return_freed_memory(False) is False  # already off: nothing to restore
    monkeypatch.setenv("KERASE3_RETURN_FREED_MEMORY", "0")
    assert backend.return_freed_memory(True) is False
    assert backend.return_freed_memory(False) is False
