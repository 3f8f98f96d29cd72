"""The one backend-specific module: gradients of energies inside a model's forward pass.

Forces are ``-dE/dpositions`` and the virial ``dE/dstrain``, taken by automatic
differentiation inside ``call`` so that training differentiates through them (forces
in the loss need second derivatives).
"""

import keras


def energy_and_gradients(energy_fn, positions, strain):
    """``(energies, dE/dpositions, dE/dstrain)`` with ``E = sum(energies)``.

    Args:
        energy_fn: ``(positions, strain) -> energies (G,)``.
        positions: `(N, 3)`.
        strain: `(G, 3, 3)` (zeros: the gradient there is the virial).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(positions)
            tape.watch(strain)
            energies = energy_fn(positions, strain)
            total = tf.reduce_sum(energies)
        g_pos, g_strain = tape.gradient(total, [positions, strain], unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return energies, tf.convert_to_tensor(g_pos), tf.convert_to_tensor(g_strain)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def total(p, s):
            e = energy_fn(p, s)
            return jnp.sum(e), e

        (_, energies), (g_pos, g_strain) = jax.value_and_grad(total, argnums=(0, 1), has_aux=True)(positions, strain)
        return energies, g_pos, g_strain
    raise ValueError(f"kerase3 models compute forces on the tensorflow and jax backends. Received: backend={backend!r}")


def scale_loss_for_replicas(loss):
    """Divide a per-replica loss by the number of replicas under a ``tf.distribute`` strategy
    (Keras sums the replicas' gradients), as Keras's own losses do."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context() is False:
            n = tf.distribute.get_strategy().num_replicas_in_sync
            if n > 1:
                return loss / n
    return loss


def compiled_call(fn):
    """``fn`` compiled with XLA where the backend can compile a stateful model call
    (TensorFlow: ``tf.function(jit_compile=True)``, one program per input shape); else ``fn``."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=True, reduce_retracing=True)
    return fn
