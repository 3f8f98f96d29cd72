"""The encoder the NequIP-style graph models share: species and geometry -> equivariant node features."""

import keras

from ..graph import keys as K
from ..o3 import Irreps
from .atom_embedding import AtomEmbedding
from .base import SharedStatistic
from .edge_embedding import EdgeEmbedding
from .interaction import InteractionStack, is_per_block
from .linear import Linear

__all__ = ["GraphEncoder"]


@keras.saving.register_keras_serializable(package="kerase3")
class GraphEncoder(keras.layers.Layer):
    """A batch of atomic graphs -> node features: one-hot species (`AtomEmbedding`) lifted by a
    `Linear` to the hidden scalars, the edges' spherical harmonics and radial basis
    (`EdgeEmbedding`), then ``num_interactions`` gated interaction blocks (`InteractionStack`,
    species self-connections).

    Geometry keeps its precision (`kerase3.backend.geometry_dtype`): the layer does not cast its
    inputs, and the edge vectors are formed from the positions as given.

    Args:
        species: atomic numbers.
        cutoff: `float`, neighbour cutoff (Angstrom).
        irreps_hidden: hidden irreps, or a list of one per block (`InteractionStack`); the lift maps
            the species to as many even scalars as the first block's first irrep has copies.
        num_interactions: `int`.
        lmax: `int`, degree of the edge harmonics.
        number_of_basis: `int`, Bessel functions.
        radial_neurons: hidden widths of the radial networks.
        avg_num_neighbors: `float`, a statistic of the convolutions (settable after build).
        sh_parity: ``-1`` (harmonics of a vector) or ``1`` (all even: models without parity).
        self_connection, scalar_activations, gate_activations, radial_act: of `InteractionStack`
            (default: species self-connections, silu/tanh scalars, sigmoid/tanh gates, silu).
        linear_biases: `bool`, biases on the scalar outputs of the lift and of the convolutions'
            `Linear` layers.
        radial_cutoff, polynomial_p, radial_r_on, trainable_basis: of `EdgeEmbedding` (the envelope
            ``"polynomial"`` or ``"xplor"``, its exponent, the XPLOR switch's start, learned Bessel
            frequencies).

    Call arguments:
        inputs: the batch dict of `kerase3.graph.keys`.
        positions, cell: optional replacements of the batch's (e.g. strained for the stress).

    Returns:
        dict: ``features (N, irreps_out.dim)``, ``node_attr (N, len(species))``, ``sh`` and
        ``radial`` of the edges.

    Example:
        >>> from kerase3.graph import batch_graphs, graph_from_arrays
        >>> enc = GraphEncoder([1, 8], 3.0, "4x0e + 4x1o", num_interactions=1, lmax=1, radial_neurons=(8,))
        >>> water = graph_from_arrays(np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), [8, 1, 1], 3.0)
        >>> str(enc.irreps_out), tuple(enc(batch_graphs([water]))["features"].shape)
        ('4x0e+4x1o', (3, 16))
    """

    avg_num_neighbors = SharedStatistic("interactions")

    def __init__(self, species, cutoff, irreps_hidden, num_interactions, lmax, number_of_basis=8, radial_neurons=(64,),
                 avg_num_neighbors=1.0, sh_parity=-1, self_connection="species", scalar_activations=None,
                 gate_activations=None, radial_act="silu", radial_cutoff="polynomial", polynomial_p=6, radial_r_on=None,
                 trainable_basis=False, linear_biases=False, **kwargs):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.species = [int(z) for z in species]
        self.cutoff = float(cutoff)
        per_block = is_per_block(irreps_hidden)
        self.irreps_hidden = [Irreps(h) for h in irreps_hidden] if per_block else Irreps(irreps_hidden)
        first = self.irreps_hidden[0] if per_block else self.irreps_hidden
        self.num_interactions, self.lmax, self.number_of_basis = int(num_interactions), int(lmax), int(number_of_basis)
        self.radial_neurons = [int(n) for n in radial_neurons]
        self.sh_parity = int(sh_parity)
        self.radial_cutoff, self.polynomial_p, self.trainable_basis = radial_cutoff, int(polynomial_p), bool(trainable_basis)
        self.radial_r_on = None if radial_r_on is None else float(radial_r_on)
        dt = dict(dtype=self.dtype_policy)
        self.embedding = AtomEmbedding(self.species, **dt)
        self.edges = EdgeEmbedding(self.lmax, self.number_of_basis, self.cutoff, sh_parity=self.sh_parity,
                                   radial_cutoff=radial_cutoff, p=self.polynomial_p, radial_r_on=self.radial_r_on,
                                   trainable_basis=self.trainable_basis, **dt)
        self.linear_biases = bool(linear_biases)
        self.embed_linear = Linear(self.embedding.irreps_out, f"{first[0].mul}x0e", biases=self.linear_biases, **dt)
        self.interactions = InteractionStack(self.embed_linear.irreps_out, self.edges.irreps_sh, self.irreps_hidden,
                                             self.num_interactions, self.number_of_basis, self.radial_neurons,
                                             avg_num_neighbors, irreps_node_attr=self.embedding.irreps_out,
                                             self_connection=self_connection, scalar_activations=scalar_activations,
                                             gate_activations=gate_activations, radial_act=radial_act,
                                             linear_biases=self.linear_biases, **dt)
        self.irreps_out = self.interactions.irreps_out
        self.irreps_sh = self.edges.irreps_sh

    def build(self, *args, **kwargs):
        """Every weight from the irreps alone."""
        self.embedding.build((None,))
        self.edges.build()
        self.embed_linear.build((None, self.embed_linear.irreps_in.dim))
        self.interactions.build()
        self.built = True

    def type_index(self, atomic_numbers):
        """Row of every atom's species in per-species tables (``len(species)`` for padding and unknown)."""
        return self.embedding.type_index(atomic_numbers)

    def call(self, inputs, positions=None, cell=None):
        pos = inputs[K.POSITIONS] if positions is None else positions
        cell = inputs.get(K.CELL) if cell is None else cell
        senders, receivers = inputs[K.SENDERS], inputs[K.RECEIVERS]
        edges = self.edges(pos, senders, receivers, inputs.get(K.SHIFTS), cell,
                           inputs.get(K.NODE_GRAPH) if cell is not None else None)
        attr = self.embedding(inputs[K.ATOMIC_NUMBERS])
        x = self.interactions(self.embed_linear(attr), edges["sh"], edges["radial"], senders, receivers, attr)
        return dict(features=x, node_attr=attr, sh=edges["sh"], radial=edges["radial"])

    def compute_output_spec(self, inputs, positions=None, cell=None):
        n = inputs[K.ATOMIC_NUMBERS].shape[0]
        e = inputs[K.SENDERS].shape[0]
        dt = self.compute_dtype
        return dict(features=keras.KerasTensor((n, self.irreps_out.dim), dt), node_attr=keras.KerasTensor((n, len(self.species)), dt),
                    sh=keras.KerasTensor((e, self.irreps_sh.dim), dt), radial=keras.KerasTensor((e, self.number_of_basis), dt))

    def get_config(self):
        config = super().get_config()
        stack = self.interactions
        config.update(species=self.species, cutoff=self.cutoff,
                      irreps_hidden=[str(h) for h in self.irreps_hidden] if stack.per_block else str(self.irreps_hidden),
                      num_interactions=self.num_interactions, lmax=self.lmax, number_of_basis=self.number_of_basis,
                      radial_neurons=self.radial_neurons, avg_num_neighbors=self.avg_num_neighbors, sh_parity=self.sh_parity,
                      self_connection=stack.self_connection, scalar_activations=stack.scalar_activations,
                      gate_activations=stack.gate_activations, radial_act=stack.radial_act, radial_cutoff=self.radial_cutoff,
                      polynomial_p=self.polynomial_p, radial_r_on=self.radial_r_on, trainable_basis=self.trainable_basis,
                      linear_biases=self.linear_biases)
        return config

    def __repr__(self):
        return f"GraphEncoder({self.species}, cutoff={self.cutoff}, -> {self.irreps_out}, {self.num_interactions} blocks)"
