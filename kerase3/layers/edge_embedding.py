"""The geometry of a graph's edges, computed once for every model: vectors, lengths, spherical
harmonics and radial basis."""

import keras
from keras import ops

from .. import ops as k3ops
from ..backend import geometry_dtype
from ..o3 import Irreps
from .radial_basis import RadialBasis
from .spherical_harmonics import SphericalHarmonics


@keras.saving.register_keras_serializable(package="kerase3")
class EdgeEmbedding(keras.layers.Layer):
    """Edge vectors -> lengths, spherical harmonics and radial basis: the encoder of every graph model.

    Geometry follows kerase3's one dtype rule (`kerase3.backend.geometry_dtype`): positions, cells,
    vectors, lengths, harmonics and the radial basis are computed in float32 under float16/bfloat16
    policies (float64 under float64) and inputs are not cast by Keras before the call; the harmonics
    and the radial basis are returned in the layer's compute dtype, ready for the convolutions.
    Zero-length edges (padding, an atom with itself) give length 0 and finite gradients.

    Args:
        lmax: `int`, largest degree of the spherical harmonics.
        number_of_basis: `int`, size of the radial basis.
        cutoff: `float`, radius where the radial basis ends.
        sh_parity: ``-1`` (harmonics of a vector, ``(-1)**l``) or ``1`` (all even).
        sh_normalization: ``"component"``, ``"norm"`` or ``"integral"``.
        radial_basis, radial_cutoff, p, radial_scale, radial_r_on, trainable_basis: as `RadialBasis`'s
            ``basis``, ``cutoff`` (``"polynomial"``, ``"xplor"``...), ``p``, ``scale``, ``r_on`` and
            ``trainable`` (learned Bessel frequencies).

    Call arguments:
        positions `(N, 3)`, senders and receivers `(E,)`; optional shifts `(E, 3)`, cell `(G, 3, 3)` and
        node_graph `(N,)` (periodic cells).

    Returns:
        a dict: ``vectors (E, 3)`` and ``lengths (E,)`` (geometry dtype), ``sh (E, irreps_sh.dim)`` and
        ``radial (E, number_of_basis)`` (compute dtype).

    Example:
        >>> import numpy as np
        >>> emb = EdgeEmbedding(lmax=2, number_of_basis=8, cutoff=3.0)
        >>> out = emb(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1.5]]), np.array([0, 1]), np.array([1, 0]))
        >>> str(emb.irreps_sh), tuple(out["sh"].shape), tuple(out["radial"].shape), float(out["lengths"][0])
        ('1x0e+1x1o+1x2e', (2, 9), (2, 8), 1.5)
    """

    def __init__(self, lmax, number_of_basis, cutoff, sh_parity=-1, sh_normalization="component", radial_basis="bessel",
                 radial_cutoff="polynomial", p=6, radial_scale=1.0, radial_r_on=None, trainable_basis=False, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        if sh_parity not in (-1, 1):
            raise ValueError(f"EdgeEmbedding: sh_parity must be -1 or 1. Received: sh_parity={sh_parity!r}")
        self.lmax, self.number_of_basis, self.cutoff = int(lmax), int(number_of_basis), float(cutoff)
        self.sh_parity, self.sh_normalization = int(sh_parity), sh_normalization
        self.radial_basis, self.radial_cutoff, self.p, self.radial_scale = radial_basis, radial_cutoff, p, float(radial_scale)
        self.radial_r_on, self.trainable_basis = (None if radial_r_on is None else float(radial_r_on)), bool(trainable_basis)
        self.irreps_sh = Irreps.spherical_harmonics(self.lmax, p=self.sh_parity)
        self.geometry_dtype = geometry_dtype(self.dtype_policy)
        geo = dict(dtype=self.geometry_dtype)
        self.sh = SphericalHarmonics(self.irreps_sh, normalize=True, normalization=sh_normalization, **geo)
        self.radial = RadialBasis(self.number_of_basis, self.cutoff, basis=radial_basis, cutoff=radial_cutoff, p=p,
                                  scale=self.radial_scale, r_on=self.radial_r_on, trainable=self.trainable_basis, **geo)

    def build(self, *args, **kwargs):
        self.sh.build((None, 3))
        self.radial.build((None,))
        self.built = True

    def call(self, positions, senders, receivers, shifts=None, cell=None, node_graph=None):
        pos = ops.cast(positions, self.geometry_dtype)
        if cell is not None:
            cell = ops.cast(cell, self.geometry_dtype)
        vectors = k3ops.edge_vectors(pos, senders, receivers, shifts, cell, node_graph)
        lengths = k3ops.safe_norm(vectors, axis=-1)
        sh = ops.cast(self.sh(vectors), self.compute_dtype)
        radial = ops.cast(self.radial(lengths), self.compute_dtype)
        return dict(vectors=vectors, lengths=lengths, sh=sh, radial=radial)

    def compute_output_spec(self, positions, senders, *args, **kwargs):
        e = senders.shape[0]
        return dict(vectors=keras.KerasTensor((e, 3), self.geometry_dtype),
                    lengths=keras.KerasTensor((e,), self.geometry_dtype),
                    sh=keras.KerasTensor((e, self.irreps_sh.dim), self.compute_dtype),
                    radial=keras.KerasTensor((e, self.number_of_basis), self.compute_dtype))

    def get_config(self):
        config = super().get_config()
        config.update(lmax=self.lmax, number_of_basis=self.number_of_basis, cutoff=self.cutoff, sh_parity=self.sh_parity,
                      sh_normalization=self.sh_normalization, radial_basis=self.radial_basis,
                      radial_cutoff=self.radial_cutoff, p=self.p, radial_scale=self.radial_scale,
                      radial_r_on=self.radial_r_on, trainable_basis=self.trainable_basis)
        return config

    def __repr__(self):
        return (f"EdgeEmbedding(sh {self.irreps_sh}, {self.radial_basis} x {self.number_of_basis}, "
                f"cutoff={self.cutoff})")
