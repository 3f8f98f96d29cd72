import keras

from ..o3 import Irreps
from ..ops.norms import irrep_norms
from .base import IrrepsLayer


@keras.saving.register_keras_serializable(package="kerase3")
class Norm(IrrepsLayer):
    """Norm of every irrep copy (e3nn's ``o3.Norm``); zero vectors give 0 with finite gradients.

    Args:
        irreps_in: irreps of the input.
        squared: `bool`, return squared norms.

    Input shape:
        `(..., irreps_in.dim)`.
    Output shape:
        `(..., irreps_in.num_irreps)`, irreps ``num_irreps x 0e``.

    Example:
        >>> np.round(np.asarray(Norm("2x0e + 1o")(np.ones((1, 5))), float), 4).tolist()
        [[1.0, 1.0, 1.7321]]
    """

    def __init__(self, irreps_in, squared=False, **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in)
        self.squared = squared
        self.irreps_out = Irreps(f"{self.irreps_in.num_irreps}x0e")

    def call(self, x):
        self.check_input(x, self.irreps_in)
        return irrep_norms(x, self.irreps_in, self.squared)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.irreps_in.num_irreps,)

    def get_config(self):
        config = super().get_config()
        config.update(squared=self.squared)
        return config

    def __repr__(self):
        return f"Norm({self.irreps_in} -> {self.irreps_out})"
