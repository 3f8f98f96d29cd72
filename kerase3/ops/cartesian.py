"""Cartesian tensors <-> irreps (e3nn's ``CartesianTensor``), as batched ``keras.ops``."""

from keras import ops

from ..o3 import ReducedTensorProducts
from .layout import check_last_dim

__all__ = ["CartesianTensor"]


class CartesianTensor:
    """A Cartesian tensor with index symmetries, as irreps.

    Every index is a vector (``1o``); the formula gives the symmetries: ``"ij=ji"`` (symmetric
    matrix: ``0e + 2e``), ``"ij=-ji"`` (``1e``), ``"ij"`` (any matrix: ``0e + 1e + 2e``),
    ``"ijk=jik"`` (piezoelectric), ``"ijkl=jikl=klij"`` (elasticity: ``2x0e + 2x2e + 1x4e``,
    21 numbers).

    Args:
        formula: index-symmetry formula (see `kerase3.o3.ReducedTensorProducts`).

    Attributes:
        irreps: `Irreps` of the features.
        change_of_basis: ``(irreps.dim, 3, 3, ...)`` numpy array (e3nn's).
    """

    def __init__(self, formula):
        if not isinstance(formula, str):
            raise ValueError(f"CartesianTensor: formula must be a string such as 'ij=ji'. Received: {formula!r}")
        indices = formula.split("=")[0].replace("-", "").strip()
        try:
            rtp = ReducedTensorProducts(formula, **{i: "1o" for i in indices})
        except ValueError as e:
            raise ValueError(f"CartesianTensor: bad formula {formula!r}: {e}") from None
        self.formula = formula
        self.indices = indices
        self.irreps = rtp.irreps_out
        self.change_of_basis = rtp.change_of_basis
        self.rank = len(indices)

    @property
    def dim(self):
        return self.irreps.dim

    @property
    def shape(self):
        return (3,) * self.rank

    def _Q(self, dtype):
        return ops.convert_to_tensor(self.change_of_basis.reshape(self.dim, -1), dtype=dtype)

    def from_cartesian(self, tensor):
        """``(..., 3, 3, ...) -> (..., irreps.dim)`` (the part of the tensor with the symmetries)."""
        tensor = ops.convert_to_tensor(tensor)
        if tuple(tensor.shape[len(tensor.shape) - self.rank:]) != self.shape:
            raise ValueError(f"CartesianTensor({self.formula!r}).from_cartesian: expected (..., {', '.join('3' * self.rank)}). "
                             f"Received: shape={tuple(tensor.shape)}")
        batch = tuple(ops.shape(tensor)[: len(tensor.shape) - self.rank])
        flat = ops.reshape(tensor, batch + (3**self.rank,))
        return ops.matmul(flat, ops.transpose(self._Q(flat.dtype)))

    def to_cartesian(self, features):
        """``(..., irreps.dim) -> (..., 3, 3, ...)``, a tensor with the formula's symmetries."""
        features = ops.convert_to_tensor(features)
        check_last_dim(features, self.irreps, f"CartesianTensor({self.formula!r}).to_cartesian", "features")
        flat = ops.matmul(features, self._Q(features.dtype))
        return ops.reshape(flat, tuple(ops.shape(features)[:-1]) + self.shape)

    def from_vectors(self, *vectors):
        """Features of ``v1 (x) v2 (x) ...`` (each ``(..., 3)``)."""
        if len(vectors) != self.rank:
            raise ValueError(f"CartesianTensor({self.formula!r}).from_vectors: {self.rank} vectors expected. Received: {len(vectors)}")
        letters = "abcdefgh"[: self.rank]
        spec = "z" + letters + "," + ",".join(f"n{c}" for c in letters) + "->nz"
        vs = [ops.convert_to_tensor(v) for v in vectors]
        batch = tuple(ops.shape(vs[0])[:-1])
        vs = [ops.reshape(v, (-1, 3)) for v in vs]
        Q = ops.convert_to_tensor(self.change_of_basis, dtype=vs[0].dtype)
        return ops.reshape(ops.einsum(spec, Q, *vs), batch + (self.dim,))

    def __repr__(self):
        return f"CartesianTensor({self.formula!r}: {self.irreps})"

    def __eq__(self, other):
        return isinstance(other, CartesianTensor) and other.formula == self.formula

    def __hash__(self):
        return hash(self.formula)

