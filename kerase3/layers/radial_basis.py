import math

import keras
import numpy as np
from keras import ops

from ..ops import radial
from .base import geometry_dtype


@keras.saving.register_keras_serializable(package="kerase3")
class RadialBasis(keras.layers.Layer):
    """Radial basis of edge lengths, optionally times a smooth cutoff envelope.

    Args:
        number: `int`, number of basis functions.
        max_radius: `float`, the cutoff radius.
        basis: ``"bessel"`` (NequIP's ``(2/r_max) sin(n pi r / r_max) / r``) or one of e3nn's
            ``soft_one_hot_linspace`` bases: ``"gaussian"``, ``"cosine"``, ``"smooth_finite"``,
            ``"fourier"``.
        cutoff: ``"polynomial"`` (NequIP's envelope with exponent ``p``), ``"xplor"`` (the XPLOR
            switching function from ``r_on``, SevenNet's), ``True`` (e3nn's ``cutoff=True`` for the
            linspace bases), or ``None``/``False``.
        p: `int`, exponent of the polynomial envelope.
        trainable: `bool`, learn the Bessel frequencies (NequIP, SevenNet).
        r_on: `float`, where the ``"xplor"`` switch starts (default ``0.9 * max_radius``).
        scale: `float`, multiplies the basis (e3nn's networks use ``sqrt(number)`` with
            ``smooth_finite``); default 1.

    Input shape:
        `(...)` lengths, or `(..., 1)`.
    Output shape:
        `(..., number)`.

    Example:
        >>> rb = RadialBasis(8, max_radius=3.0)
        >>> tuple(rb(np.array([0.5, 1.0, 2.9])).shape), float(np.abs(np.asarray(rb(np.array([3.5])))).max())
        ((3, 8), 0.0)
    """

    def __init__(self, number, max_radius, basis="bessel", cutoff="polynomial", p=6, trainable=False, scale=1.0, r_on=None,
                 **kwargs):
        kwargs["dtype"] = geometry_dtype(kwargs.get("dtype"))
        super().__init__(**kwargs)
        if basis not in ("bessel",) + radial.BASES:
            raise ValueError(f"RadialBasis: unknown basis. Received: basis={basis!r}")
        if cutoff not in ("polynomial", "xplor", True, False, None):
            raise ValueError(f"RadialBasis: cutoff must be 'polynomial', 'xplor', True, False or None. Received: cutoff={cutoff!r}")
        self.number, self.max_radius, self.basis, self.cutoff = int(number), float(max_radius), basis, cutoff
        self.r_on = 0.9 * self.max_radius if r_on is None else float(r_on)
        if cutoff == "xplor" and not 0 <= self.r_on < self.max_radius:
            raise ValueError(f"RadialBasis: r_on must be in [0, max_radius={self.max_radius}). Received: r_on={r_on}")
        self.p, self.trainable_freqs, self.scale = p, trainable, scale

    def build(self, input_shape=None):
        if self.basis == "bessel":
            self.freqs = self.add_weight(
                name="freqs", shape=(self.number,), trainable=self.trainable_freqs,
                initializer=keras.initializers.Constant(np.arange(1, self.number + 1) * math.pi),
            )

    def call(self, r):
        r = ops.convert_to_tensor(r)
        if len(r.shape) > 0 and r.shape[-1] == 1 and self.number != 1:
            r = r[..., 0]
        if self.basis == "bessel":
            out = radial.bessel_basis(r, self.max_radius, self.number, ops.cast(self.freqs, r.dtype))
        else:
            out = radial.soft_one_hot_linspace(r, 0.0, self.max_radius, self.number, self.basis, cutoff=self.cutoff is True)
        if self.cutoff == "polynomial":
            out = out * ops.expand_dims(radial.polynomial_cutoff(r, self.max_radius, self.p), -1)
        elif self.cutoff == "xplor":
            out = out * ops.expand_dims(radial.xplor_cutoff(r, self.r_on, self.max_radius), -1)
        elif self.cutoff is True and self.basis == "bessel":
            out = out * ops.expand_dims(ops.cast(r < self.max_radius, out.dtype), -1)
        return out * self.scale if self.scale != 1.0 else out

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        if shape and shape[-1] == 1:
            shape = shape[:-1]
        return shape + (self.number,)

    def get_config(self):
        config = super().get_config()
        config.update(number=self.number, max_radius=self.max_radius, basis=self.basis, cutoff=self.cutoff,
                      p=self.p, trainable=self.trainable_freqs, scale=self.scale, r_on=self.r_on)
        return config

    def __repr__(self):
        cut = f", cutoff={self.cutoff}" if self.cutoff else ""
        return f"RadialBasis({self.basis}, number={self.number}, max_radius={self.max_radius}{cut})"
