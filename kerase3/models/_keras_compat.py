"""The one module of kerase3 that touches Keras's private API (checked against the installed
Keras by ``tests/models/test_keras_compat.py``; `KERAS_PRIVATE_NAMES` lists what it uses).

- `SymbolicBuildWithoutBatch`: under a distribution strategy, Keras (TensorFlow trainer) builds a
  model by averaging one batch over the replicas (``Trainer._maybe_symbolic_build``), which
  fails on a dict of graph arrays under ``MultiWorkerMirroredStrategy``; a kerase3 model builds
  its weights from its irreps and needs no batch, so only the compile state is built.
- `multi_worker`: whether the model trains under a multi-worker strategy
  (``Model._distribute_strategy``; Keras averages several workers' logs along an axis that
  scalars lack).
- `keep_input_dtypes`: Keras's ``Layer.__call__`` casts every floating input to the compute
  dtype (``Layer._convert_input_args``); graph models cast their geometry themselves.
"""

#: ``(owner, attribute)`` of every private Keras name used here
KERAS_PRIVATE_NAMES = (("keras.Model", "_maybe_symbolic_build"), ("keras.Model", "_symbolic_build"),
                       ("keras.Model", "_flatten_layers"), ("keras.Model", "_distribute_strategy"),
                       ("keras.Model", "_compile_metrics"), ("keras.Model", "_compile_loss"),
                       ("keras.layers.Layer", "_convert_input_args"))

__all__ = ["SymbolicBuildWithoutBatch", "multi_worker", "keep_input_dtypes", "KERAS_PRIVATE_NAMES"]


class SymbolicBuildWithoutBatch:
    """Mixin for ``keras.Model``: under a strategy, a model whose layers are all built skips
    Keras's symbolic build on an averaged batch (see the module docstring)."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        compile_unbuilt = any(getattr(self, a, None) is not None and not getattr(self, a).built
                              for a in ("_compile_metrics", "_compile_loss"))
        if getattr(self, "_distribute_strategy", None) is not None and self.built and not compile_unbuilt \
                and all(layer.built for layer in self._flatten_layers()):
            with self.distribute_strategy.scope():
                self._symbolic_build(data_batch=None)
            return
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)


def multi_worker(model):
    """Whether ``model`` runs under a multi-worker distribution strategy."""
    strategy = getattr(model, "_distribute_strategy", None)
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def keep_input_dtypes(layer):
    """Tell Keras not to cast ``layer``'s floating inputs to its compute dtype."""
    layer._convert_input_args = False
