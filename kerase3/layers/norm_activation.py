import keras
from keras import ops

from ..ops.activations import get_activation
from ..ops.layout import split_blocks, split_sizes
from .base import IrrepsLayer
from ..ops.norms import irrep_norms


@keras.saving.register_keras_serializable(package="kerase3")
class NormActivation(IrrepsLayer):
    """``x -> f(|x| + b) x / |x|`` for every irrep copy (e3nn's ``nn.NormActivation``).

    Args:
        irreps_in: irreps of the input (and output).
        scalar_nonlinearity: activation name or callable applied to the norms.
        normalize: `bool`; if True divide by the norm (so the output norm is ``f(|x|)``).
        epsilon: norms below ``epsilon`` are clamped to it (default 1e-8 when normalizing).
        bias: `bool`, a learned bias per irrep copy added to the norm.

    Input shape:
        `(..., irreps_in.dim)`.
    Output shape:
        `(..., irreps_in.dim)`.

    Example:
        >>> tuple(NormActivation("2x1o", "sigmoid")(np.ones((3, 6))).shape)
        (3, 6)
    """

    def __init__(self, irreps_in, scalar_nonlinearity, normalize=True, epsilon=None, bias=False, **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in)
        self.scalar_nonlinearity = scalar_nonlinearity
        self._fn = get_activation(scalar_nonlinearity)
        if epsilon is None and normalize:
            epsilon = 1e-8
        elif epsilon is not None and not normalize:
            raise ValueError(f"NormActivation: epsilon needs normalize=True. Received: epsilon={epsilon}, normalize=False")
        if epsilon is not None and not epsilon > 0:
            raise ValueError(f"NormActivation: epsilon must be > 0. Received: epsilon={epsilon}")
        self.normalize = normalize
        self.epsilon = epsilon
        self.bias = bias

    @property
    def irreps_out(self):
        return self.irreps_in

    def build(self, input_shape=None):
        if self.bias:
            self.biases = self.add_weight(name="biases", shape=(self.irreps_in.num_irreps,), initializer="zeros")

    def call(self, x):
        self.check_input(x, self.irreps_in)
        if self.epsilon is not None:
            norms = ops.sqrt(ops.maximum(irrep_norms(x, self.irreps_in, squared=True), self.epsilon**2))
        else:
            norms = irrep_norms(x, self.irreps_in)
        arg = norms + self.biases if self.bias else norms
        scale = self._fn(arg)
        if self.normalize:
            scale = scale / norms
        parts = []
        batch = ops.shape(x)[:-1]
        scales = split_sizes(scale, [mul for mul, _ in self.irreps_in])
        for (mul, ir), block, sk in zip(self.irreps_in, split_blocks(x, self.irreps_in), scales):
            block = ops.reshape(block, batch + (mul, ir.dim)) * sk[..., None]
            parts.append(ops.reshape(block, batch + (mul * ir.dim,)))
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            scalar_nonlinearity=self.scalar_nonlinearity,
            normalize=self.normalize,
            epsilon=self.epsilon,
            bias=self.bias,
        )
        return config

    def __repr__(self):
        return f"NormActivation({self.irreps_in} -> {self.irreps_in})"
