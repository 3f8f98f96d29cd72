import keras

from .. import ops as k3ops
from .base import IrrepsLayer, normal_init


@keras.saving.register_keras_serializable(package="kerase3")
class Linear(IrrepsLayer):
    """Equivariant linear map: mixes the channels of each irrep (e3nn's ``o3.Linear``).

    Weights are N(0, 1); the forward pass divides by ``sqrt(fan_in)`` ("element" path
    normalisation), like e3nn, so ``load_weights`` gives e3nn's numbers.

    Args:
        irreps_in: irreps of the input.
        irreps_out: irreps of the output.
        biases: `bool` (bias on every scalar 0e output) or a list of bools per output block.
        instructions: optional list of ``(i_in, i_out)``; by default every pair of equal irreps.
        path_normalization: ``"element"`` or ``"path"``.
        internal_weights: `bool`. If False, call ``layer(x, weight[, bias])`` with weights of
            shape ``(..., weight_numel)`` (per sample) instead of owning them.

    Input shape:
        `(..., irreps_in.dim)`.
    Output shape:
        `(..., irreps_out.dim)`.

    Example:
        >>> lin = Linear("2x0e + 1x1o", "3x0e + 2x1o")
        >>> tuple(lin(np.ones((4, 5))).shape), lin.weight_numel
        ((4, 9), 8)
    """

    def __init__(self, irreps_in, irreps_out, biases=False, instructions=None, path_normalization="element",
                 internal_weights=True, **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in, irreps_out=irreps_out)
        self.biases = biases
        self.instructions = None if instructions is None else [list(i) for i in instructions]
        self.path_normalization = path_normalization
        self.internal_weights = internal_weights
        self.plan = k3ops.LinearPlan(self.irreps_in, self.irreps_out, instructions, biases, path_normalization)

    @property
    def weight_numel(self):
        return self.plan.weight_numel

    @property
    def bias_numel(self):
        return self.plan.bias_numel

    def build(self, input_shape=None):
        if self.internal_weights:
            self.weight = self.add_weight(name="weight", shape=(self.plan.weight_numel,), initializer=normal_init())
            self.bias = None
            if self.plan.bias_numel:
                self.bias = self.add_weight(name="bias", shape=(self.plan.bias_numel,), initializer="zeros")

    def call(self, x, weight=None, bias=None):
        if self.internal_weights:
            weight, bias = self.weight, self.bias
        shared = self.internal_weights
        return k3ops.linear(self.plan, x, weight, bias if self.plan.bias_numel else None, shared_weights=shared)

    def compute_output_shape(self, input_shape, *args):
        return tuple(input_shape[:-1]) + (self.plan.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            biases=self.biases,
            instructions=self.instructions,
            path_normalization=self.path_normalization,
            internal_weights=self.internal_weights,
        )
        return config

    def __repr__(self):
        return f"Linear({self.irreps_in} -> {self.irreps_out} | {self.weight_numel} weights)"
