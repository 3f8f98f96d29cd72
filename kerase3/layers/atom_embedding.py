import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="kerase3")
class AtomEmbedding(keras.layers.Layer):
    """One-hot encoding of chemical species: atomic numbers -> ``(N, len(species))`` (irreps
    ``len(species)x0e``); padding atoms (atomic number 0) and unknown elements give zeros.

    Args:
        species: list of atomic numbers, e.g. ``[1, 6, 8]``.

    Input shape:
        `(N,)` ints.
    Output shape:
        `(N, len(species))`.

    Example:
        >>> np.asarray(AtomEmbedding([1, 8])(np.array([8, 1, 0]))).tolist()
        [[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    """

    def __init__(self, species, **kwargs):
        super().__init__(**kwargs)
        self.species = [int(z) for z in species]
        if not self.species or min(self.species) < 1 or len(set(self.species)) != len(self.species):
            raise ValueError(f"AtomEmbedding: species must be distinct positive atomic numbers. Received: species={species!r}")
        table = np.zeros(max(self.species) + 2, np.int32)  # index len(species) means "none"
        table[:] = len(self.species)
        for i, z in enumerate(self.species):
            table[z] = i
        self._table = table

    @property
    def irreps_out(self):
        return f"{len(self.species)}x0e"

    def type_index(self, atomic_numbers):
        """Species index of every atom (``len(species)`` for padding and unknown elements)."""
        z = ops.cast(atomic_numbers, "int32")
        z = ops.where((z > 0) & (z < len(self._table)), z, len(self._table) - 1)
        return ops.take(ops.convert_to_tensor(self._table), z, axis=0)

    def call(self, atomic_numbers):
        return ops.one_hot(self.type_index(atomic_numbers), len(self.species) + 1, dtype=self.compute_dtype)[:, : len(self.species)]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (len(self.species),)

    def get_config(self):
        config = super().get_config()
        config.update(species=self.species)
        return config

    def __repr__(self):
        return f"AtomEmbedding({self.species} -> {self.irreps_out})"
