"""What every kerase3 model adds to Keras's training loop."""

import keras


class TracesOnce:
    """Mixin for ``keras.Model``: build the optimizer's slots before the train step is traced.

    Keras creates Adam's moments inside the first trace of the train step when the optimizer is
    not built yet; TensorFlow then traces the whole step a second time (a ``tf.function`` that
    created variables is retraced without them), which doubled the wait for the first step
    (``benchmarks/first_step.py``). Building them first makes one trace.
    """

    def make_train_function(self, force=False):
        opt = getattr(self, "optimizer", None)
        if self.built and opt is not None and not opt.built and self.trainable_variables:
            opt.build(self.trainable_variables)
        return super().make_train_function(force)


__all__ = ["TracesOnce"]
