"""What every kerase3 model adds to Keras's training loop."""

import keras


class TracesOnce:
    """Mixin for ``keras.Model``: build the optimizer's slots before the train step is traced.

    Keras creates Adam's moments inside the first trace of the train step when the optimizer is
    not built yet; TensorFlow then traces the whole step a second time (a ``tf.function`` that
    created variables is retraced without them), which doubled the wait for the first step
    (``benchmarks/first_step.py``); the same for the model's own weights when ``fit`` runs on a
    model never called. Building both first makes one trace.
    """

    def make_train_function(self, force=False):
        if not self.built:
            # every kerase3 model creates its weights from its irreps alone; on TensorFlow without
            # a distribution strategy Keras would otherwise create them inside the first trace
            self.build(None)
        opt = getattr(self, "optimizer", None)
        if opt is not None and not opt.built and self.trainable_variables:
            opt.build(self.trainable_variables)
        return super().make_train_function(force)


__all__ = ["TracesOnce"]
