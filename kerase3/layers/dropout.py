import keras
from keras import ops

from .base import IrrepsLayer


@keras.saving.register_keras_serializable(package="kerase3")
class Dropout(IrrepsLayer):
    """Equivariant dropout: whole irrep copies are zeroed with probability ``p`` (and the rest
    scaled by ``1 / (1 - p)``) during training; identity at inference.

    Args:
        irreps: irreps of the input.
        p: `float` in [0, 1].
        seed: optional `int`.

    Input shape:
        `(..., irreps.dim)`.
    Output shape:
        same as the input.

    Example:
        >>> x = np.ones((2, 6))
        >>> bool(np.array_equal(np.asarray(Dropout("2x1o", p=0.5)(x, training=False)), x))
        True
    """

    def __init__(self, irreps, p, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps=irreps)
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be in [0, 1]. Received: p={p}")
        self.p = p
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training or self.p == 0:
            return x
        batch = ops.shape(x)[:-1]
        if self.p >= 1:
            return ops.zeros_like(x)
        keep = keras.random.uniform(batch + (self.irreps.num_irreps,), seed=self.seed_generator, dtype="float32") >= self.p
        noise = ops.cast(keep, x.dtype) / (1 - self.p)
        parts, k = [], 0
        for mul, ir in self.irreps:
            parts.append(ops.repeat(noise[..., k : k + mul], ir.dim, axis=-1))
            k += mul
        return x * (parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(p=self.p, seed=self.seed)
        return config

    def __repr__(self):
        return f"Dropout({self.irreps}, p={self.p})"
