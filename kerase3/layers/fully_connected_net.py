import math

import keras
from keras import ops

from .. import backend
from ..ops.activations import normalize2mom
from .base import normal_init


@keras.saving.register_keras_serializable(package="kerase3")
class FullyConnectedNet(keras.layers.Layer):
    """Multilayer perceptron on scalars with e3nn's normalisation (e3nn's ``nn.FullyConnectedNet``),
    typically the radial network of a convolution.

    Weights are N(0, 1) and each layer computes ``act(x @ W / sqrt(h_in))``; the activation
    is rescaled to unit second moment, so activations keep unit variance at initialisation.

    Args:
        hs: list of widths ``[h_in, h_1, ..., h_out]``.
        act: activation name or callable (None: linear).
        variance_in: `float`, variance of the input.
        variance_out: `float`, variance of the output.
        out_act: `bool`, also apply the activation after the last layer.

    Input shape:
        `(..., hs[0])`.
    Output shape:
        `(..., hs[-1])`.

    Example:
        >>> tuple(FullyConnectedNet([4, 16, 2], "silu")(np.ones((3, 4))).shape)
        (3, 2)
    """

    def __init__(self, hs, act=None, variance_in=1, variance_out=1, out_act=False, **kwargs):
        super().__init__(**kwargs)
        self.hs = [int(h) for h in hs]
        if len(self.hs) < 2:
            raise ValueError(f"FullyConnectedNet: hs needs at least an input and an output width. Received: hs={hs!r}")
        self.act = act
        self.variance_in = variance_in
        self.variance_out = variance_out
        self.out_act = out_act
        self._fn, self._cst = normalize2mom(act)

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] is not None and input_shape[-1] != self.hs[0]:
            raise ValueError(f"FullyConnectedNet: input must have {self.hs[0]} features (hs={self.hs}). Received: shape={tuple(input_shape)}")
        self.kernels = [
            self.add_weight(name=f"layer{i}", shape=(h1, h2), initializer=normal_init())
            for i, (h1, h2) in enumerate(zip(self.hs, self.hs[1:]))
        ]

    def call(self, x):
        return self._apply_layers(x, len(self.kernels))

    def call_factored(self, x):
        """``(h, M)`` with ``call(x) == h @ M``: the last hidden features and the last layer's
        (normalised) matrix, when the last layer is linear (else ``(call(x), None)``). A
        convolution kernel given both forms the product a block of edges at a time
        (`kerase3.ops.scatter_tensor_product`'s ``weight_matrix``), so the full output is never
        stored."""
        n = len(self.kernels)
        if self._fn is not None and self.out_act:
            return self.call(x), None
        h = self._apply_layers(x, n - 1)
        var_in = self.variance_in if n == 1 else 1
        m = ops.cast(self.kernels[-1], h.dtype) / math.sqrt(self.hs[-2] * var_in / self.variance_out)
        return h, m

    def _apply_layers(self, x, n_layers):
        """The first ``n_layers`` layers."""
        if x.shape[-1] is not None and x.shape[-1] != self.hs[0]:
            raise ValueError(f"FullyConnectedNet: input must have {self.hs[0]} features (hs={self.hs}). Received: shape={tuple(x.shape)}")
        var_in = self.variance_in
        n = len(self.kernels)
        for i, w in enumerate(self.kernels[:n_layers]):
            last = i == n - 1
            var_out = self.variance_out if last else 1
            h_in = self.hs[i]
            use_act = self._fn is not None and (not last or self.out_act)
            w = ops.cast(w, x.dtype)
            if use_act:
                x = self._dense_act(x, w / math.sqrt(h_in * var_in), self._cst * math.sqrt(var_out))
            else:
                x = ops.matmul(x, w / math.sqrt(h_in * var_in / var_out))
            var_in = var_out
        return x

    def _dense_act(self, x, w, scale):
        """``scale * act(x @ w)``, whose derivative forms ``x @ w`` again (`kerase3.backend.checkpoint`).

        Automatic differentiation would keep ``x @ w`` and the activation's intermediates, each as
        large as the output, from the forward pass to the backward pass: for a radial network on
        every edge of a large structure (171k edges x 64 at 4,000 atoms: 44 MB each, per layer)
        they were most of the memory that forces need. Recomputed, only ``x`` is kept (the radial
        basis: a few numbers per edge)."""
        fn = self._fn

        def dense_act(a, b):
            z = fn(ops.matmul(a, b))
            return z * scale if scale != 1.0 else z

        return backend.checkpoint(dense_act, x, w)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.hs[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(hs=self.hs, act=self.act, variance_in=self.variance_in, variance_out=self.variance_out, out_act=self.out_act)
        return config

    def __repr__(self):
        return f"FullyConnectedNet{self.hs}"
