"""``sin``, ``cos`` and ``tanh`` that keep float64.

Keras's JAX backend computes these three in float32 even for float64 inputs (its
type promotion maps float64 to float32 for them, while ``exp``, ``sqrt``, ``sigmoid``
and the rest keep float64). kerase3 promises float64 everywhere, so on that backend
and dtype these call ``jax.numpy`` directly; everywhere else they are ``keras.ops``.
"""

import keras
from keras import ops


def _float64_jax(x):
    return keras.backend.backend() == "jax" and keras.backend.standardize_dtype(x.dtype) == "float64"


def sin(x):
    x = ops.convert_to_tensor(x)
    if _float64_jax(x):
        import jax.numpy as jnp

        return jnp.sin(x)
    return ops.sin(x)


def cos(x):
    x = ops.convert_to_tensor(x)
    if _float64_jax(x):
        import jax.numpy as jnp

        return jnp.cos(x)
    return ops.cos(x)


def tanh(x):
    x = ops.convert_to_tensor(x)
    if _float64_jax(x):
        import jax.numpy as jnp

        return jnp.tanh(x)
    return ops.tanh(x)


def mean(x, axis=None, keepdims=False):
    """``keras.ops.mean`` that keeps float64 (Keras's JAX backend averages in float32)."""
    x = ops.convert_to_tensor(x)
    if not _float64_jax(x):
        return ops.mean(x, axis=axis, keepdims=keepdims)
    axes = range(len(x.shape)) if axis is None else ([axis] if isinstance(axis, int) else axis)
    count = 1
    for a in axes:
        count = count * ops.shape(x)[a]
    return ops.sum(x, axis=axis, keepdims=keepdims) / count
