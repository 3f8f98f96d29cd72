import keras
from keras import ops

from ..ops._layout import split_blocks
from ._base import irreps_arg


def irrep_norms(x, irreps, squared=False):
    """``[..., num_irreps]``: the (squared) norm of every irrep copy, in order."""
    parts = []
    for b, (mul, ir) in zip(split_blocks(x, irreps), irreps):
        if mul == 0:
            continue
        b = ops.reshape(b, ops.shape(x)[:-1] + (mul, ir.dim))
        parts.append(ops.sum(ops.square(b), axis=-1))
    sq = ops.concatenate(parts, axis=-1) if len(parts) > 1 else (parts[0] if parts else x[..., :0])
    if squared:
        return sq
    positive = sq > 0
    return ops.where(positive, ops.sqrt(ops.where(positive, sq, ops.ones_like(sq))), ops.zeros_like(sq))


@keras.saving.register_keras_serializable(package="kerase3")
class Norm(keras.layers.Layer):
    """Norm of every irrep copy (e3nn's ``o3.Norm``); zero vectors give 0 with finite gradients.

    Args:
        irreps_in: irreps of the input.
        squared: `bool`, return squared norms.

    Input shape:
        `(..., irreps_in.dim)`.
    Output shape:
        `(..., irreps_in.num_irreps)`, irreps ``num_irreps x 0e``.
    """

    def __init__(self, irreps_in, squared=False, **kwargs):
        super().__init__(**kwargs)
        self.irreps_in = str(irreps_arg(irreps_in, "Norm", "irreps_in"))
        self.squared = squared
        self._irreps_in = irreps_arg(irreps_in, "Norm", "irreps_in")

    @property
    def irreps_out(self):
        return f"{self._irreps_in.num_irreps}x0e"

    def call(self, x):
        if x.shape[-1] is not None and x.shape[-1] != self._irreps_in.dim:
            raise ValueError(
                f"Norm: input must have a last axis of size {self._irreps_in.dim} for irreps {self.irreps_in}. "
                f"Received: shape={tuple(x.shape)}"
            )
        return irrep_norms(x, self._irreps_in, self.squared)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self._irreps_in.num_irreps,)

    def get_config(self):
        config = super().get_config()
        config.update(irreps_in=self.irreps_in, squared=self.squared)
        return config

    def __repr__(self):
        return f"Norm({self.irreps_in} -> {self.irreps_out})"
