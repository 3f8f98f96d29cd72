import keras
from keras import ops

from ..backend import mean as f64_mean

from .base import IrrepsLayer


@keras.saving.register_keras_serializable(package="kerase3")
class BatchNorm(IrrepsLayer):
    """Equivariant batch normalisation (e3nn's ``nn.BatchNorm``).

    Scalars (0e) are shifted by their mean and scaled; every other irrep copy is only scaled,
    by the inverse root of its mean squared norm (``"component"``: mean over components,
    ``"norm"``: sum). Running statistics with ``momentum``; ``instance=True`` normalises each
    sample over its own axis 1 (``(batch, samples, dim)`` inputs) with no running statistics.

    Args:
        irreps: irreps of the input (and output).
        eps: `float`.
        momentum: `float`, weight of the new batch in the running statistics.
        affine: `bool`, learned scale per irrep copy (and bias per scalar).
        reduce: ``"mean"`` or ``"max"`` over the samples axis.
        instance: `bool`.
        include_bias: `bool`.
        normalization: ``"component"`` or ``"norm"``.

    Input shape:
        `(batch, ..., irreps.dim)`.
    Output shape:
        same as the input.

    Example:
        >>> bn = BatchNorm("2x0e + 1o")
        >>> tuple(bn(np.ones((8, 5)), training=True).shape)
        (8, 5)
    """

    def __init__(self, irreps, eps=1e-5, momentum=0.1, affine=True, reduce="mean", instance=False,
                 include_bias=True, normalization="component", **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps=irreps)
        if reduce not in ("mean", "max"):
            raise ValueError(f"BatchNorm: reduce must be 'mean' or 'max'. Received: reduce={reduce!r}")
        if normalization not in ("component", "norm"):
            raise ValueError(f"BatchNorm: normalization must be 'component' or 'norm'. Received: {normalization!r}")
        self.eps, self.momentum, self.affine, self.reduce = eps, momentum, affine, reduce
        self.instance, self.include_bias, self.normalization = instance, include_bias, normalization
        self._num_scalar = sum(mul for mul, ir in self.irreps if ir.is_scalar())
        self._num_features = self.irreps.num_irreps

    def build(self, input_shape=None):
        if not self.instance:
            self.running_mean = self.add_weight(name="running_mean", shape=(self._num_scalar,), initializer="zeros", trainable=False)
            self.running_var = self.add_weight(name="running_var", shape=(self._num_features,), initializer="ones", trainable=False)
        if self.affine:
            self.weight = self.add_weight(name="weight", shape=(self._num_features,), initializer="ones")
            if self.include_bias:
                self.bias = self.add_weight(name="bias", shape=(self._num_scalar,), initializer="zeros")

    def call(self, x, training=False):
        self.check_input(x, self.irreps)
        if self.irreps.dim == 0:
            return x
        shape = ops.shape(x)
        xb = ops.reshape(x, (shape[0], -1, self.irreps.dim))  # [batch, sample, dim]
        use_batch = training or self.instance
        new_means, new_vars, fields = [], [], []
        ix = irm = irv = iw = ib = 0
        for mul, ir in self.irreps:
            d = ir.dim
            if mul == 0:
                continue
            field = ops.reshape(xb[:, :, ix : ix + mul * d], (shape[0], -1, mul, d))
            ix += mul * d
            if ir.is_scalar():
                if use_batch:
                    if self.instance:
                        mean = f64_mean(field, axis=(1, 3))[:, None, :, None]
                    else:
                        m = f64_mean(field, axis=(0, 1, 3))
                        new_means.append(m)
                        mean = m[None, None, :, None]
                else:
                    mean = ops.cast(self.running_mean[irm : irm + mul], x.dtype)[None, None, :, None]
                irm += mul
                field = field - mean
            if use_batch:
                sq = ops.sum(ops.square(field), axis=3) if self.normalization == "norm" else f64_mean(ops.square(field), axis=3)
                sq = f64_mean(sq, axis=1) if self.reduce == "mean" else ops.max(sq, axis=1)  # [batch, mul]
                if not self.instance:
                    sq = f64_mean(sq, axis=0)
                    new_vars.append(sq)
            else:
                sq = ops.cast(self.running_var[irv : irv + mul], x.dtype)
            irv += mul
            scale = ops.rsqrt(sq + self.eps)
            if self.affine:
                scale = scale * ops.cast(self.weight[iw : iw + mul], x.dtype)
                iw += mul
            scale = ops.reshape(scale, (-1, 1, mul, 1))
            field = field * scale
            if self.affine and self.include_bias and ir.is_scalar():
                field = field + ops.cast(self.bias[ib : ib + mul], x.dtype)[:, None]
                ib += mul
            fields.append(ops.reshape(field, (shape[0], -1, mul * d)))
        if training and not self.instance:
            mom = self.momentum
            if new_means:
                m = ops.concatenate(new_means) if len(new_means) > 1 else new_means[0]
                self.running_mean.assign((1 - mom) * self.running_mean + mom * ops.cast(ops.stop_gradient(m), self.running_mean.dtype))
            if new_vars:
                v = ops.concatenate(new_vars) if len(new_vars) > 1 else new_vars[0]
                self.running_var.assign((1 - mom) * self.running_var + mom * ops.cast(ops.stop_gradient(v), self.running_var.dtype))
        out = fields[0] if len(fields) == 1 else ops.concatenate(fields, axis=2)
        return ops.reshape(out, shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(eps=self.eps, momentum=self.momentum, affine=self.affine, reduce=self.reduce,
                      instance=self.instance, include_bias=self.include_bias, normalization=self.normalization)
        return config

    def __repr__(self):
        return f"BatchNorm({self.irreps}, eps={self.eps}, momentum={self.momentum})"
