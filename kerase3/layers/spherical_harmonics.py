import keras

from .. import ops as k3ops
from .base import geometry_dtype


@keras.saving.register_keras_serializable(package="kerase3")
class SphericalHarmonics(keras.layers.Layer):
    """Spherical harmonics of vectors (e3nn's values, any degree).

    Args:
        irreps_out: irreps such as ``"0e + 1o + 2e"`` (all parities ``(-1)^l``, or all even for
            a pseudovector input), a list of degrees, or an `int` ``lmax`` meaning degrees
            ``0..lmax``.
        normalize: `bool`, scale the vectors to unit length first (zero stays zero).
        normalization: ``"component"``, ``"norm"`` or ``"integral"``.

    Under a mixed-precision policy the layer computes in float32 (geometry stays float32).

    Input shape:
        `(..., 3)`.
    Output shape:
        `(..., irreps_out.dim)`.

    Example:
        >>> sh = SphericalHarmonics(2)
        >>> y = np.asarray(sh(np.array([[0.0, 0.0, 2.0]])), float)
        >>> str(sh.irreps_out), y.shape, np.round(y[0, 1:4], 4).tolist()
        ('1x0e+1x1o+1x2e', (1, 9), [0.0, 0.0, 1.7321])
    """

    def __init__(self, irreps_out, normalize=True, normalization="component", **kwargs):
        kwargs["dtype"] = geometry_dtype(kwargs.get("dtype"))
        super().__init__(**kwargs)
        # the argument as given (an int lmax, a list of degrees or irreps) for the config
        self._irreps_out_arg = irreps_out if not hasattr(irreps_out, "dim") else str(irreps_out)
        self.normalize = normalize
        self.normalization = normalization
        ls = list(range(irreps_out + 1)) if isinstance(irreps_out, int) else irreps_out
        self._ls = ls
        self.irreps_out, _ = k3ops.sh_irreps(ls)
        if normalization not in ("component", "norm", "integral"):
            raise ValueError(
                f"SphericalHarmonics: normalization must be 'component', 'norm' or 'integral'. Received: normalization={normalization!r}"
            )

    def call(self, vectors):
        if vectors.shape[-1] is not None and vectors.shape[-1] != 3:
            raise ValueError(f"SphericalHarmonics: input must have shape (..., 3). Received: shape={tuple(vectors.shape)}")
        return k3ops.spherical_harmonics(self._ls, vectors, self.normalize, self.normalization)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(irreps_out=self._irreps_out_arg, normalize=self.normalize, normalization=self.normalization)
        return config

    def __repr__(self):
        return f"SphericalHarmonics(1o -> {self.irreps_out})"
