"""MACE's blocks as Keras layers, with the attribute names of mace-torch's ``blocks.py``:
the interaction (``RealAgnosticResidualInteractionBlock`` / ``RealAgnosticInteractionBlock``),
the equivariant product basis (``EquivariantProductBasisBlock``) and the readouts
(``LinearReadoutBlock`` / ``NonLinearReadoutBlock``)."""

import keras
from keras import ops

from .. import ops as k3ops
from ..o3 import Irreps
from ..ops.activations import normalize2mom
from .base import IrrepsLayer, Statistic
from .convolution import conv_instructions
from .fully_connected_net import FullyConnectedNet
from .linear import Linear
from .symmetric_contraction import SymmetricContraction
from .tensor_product_variants import FullyConnectedTensorProduct

__all__ = ["MACEInteraction", "MACEProduct", "MACEReadout", "mace_message_irreps"]


def mace_message_irreps(lmax, mul, both_parities):
    """The irreps of an interaction's messages: ``mul`` copies of every ``l <= lmax`` with the
    parity of the harmonics, or of both parities (once the features hold odd scalars)."""
    irs = [(l, p) for l in range(lmax + 1) for p in ((1, -1) if both_parities else ((-1) ** l,))]
    return Irreps(sorted([(mul, ir) for ir in irs], key=lambda t: (t[1][0], t[1][1])))


@keras.saving.register_keras_serializable(package="kerase3")
class MACEInteraction(IrrepsLayer):
    """One MACE interaction: ``linear_up`` of the node features, a ``uvu`` tensor product with the
    edge harmonics weighted per edge by the radial MLP ``conv_tp_weights``, messages summed at the
    receivers, ``linear`` to ``irreps_target`` and divided by ``avg_num_neighbors``; the species
    self-connection ``skip_tp``.

    Residual (mace-torch's ``RealAgnosticResidualInteractionBlock``): returns the message and
    ``skip_tp(features, species)`` in ``irreps_out``, added after the product basis. Not residual
    (``RealAgnosticInteractionBlock``): returns ``skip_tp(message, species)`` and None.

    Args:
        irreps_in: node features in.
        irreps_sh: edge harmonics.
        irreps_target: irreps of the messages.
        irreps_out: irreps of the residual (the product block's output).
        num_bessel: size of the radial basis.
        radial_mlp: hidden widths of the radial MLP.
        num_species: `int`, length of the one-hot species.
        avg_num_neighbors: `float`, a `Statistic` (settable after build, saved with the weights).
        residual: `bool`.

    Call arguments:
        node_feats ``(N, irreps_in.dim)``, node_attrs ``(N, num_species)``, edge_sh, edge_radial,
        senders, receivers (the edge points from the receiver to the sender, as in mace-torch).

    Example:
        >>> block = MACEInteraction("4x0e", "0e + 1o", "4x0e + 4x1o", "4x0e + 4x1o", 3, [8], 2)
        >>> m, sc = block(np.ones((2, 4)), np.eye(2), np.ones((2, 4)), np.ones((2, 3)), np.array([0, 1]), np.array([1, 0]))
        >>> tuple(m.shape), tuple(sc.shape)
        ((2, 16), (2, 16))
    """

    _float_args = (0, 1, 2, 3)
    avg_num_neighbors = Statistic()

    def __init__(self, irreps_in, irreps_sh, irreps_target, irreps_out, num_bessel, radial_mlp, num_species,
                 avg_num_neighbors=1.0, residual=True, **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in, irreps_sh=irreps_sh, irreps_target=irreps_target, irreps_out=irreps_out)
        self.num_bessel, self.radial_mlp, self.num_species = int(num_bessel), [int(n) for n in radial_mlp], int(num_species)
        self.avg_num_neighbors, self.residual = avg_num_neighbors, bool(residual)
        attrs = Irreps(f"{self.num_species}x0e")
        mid, instr = conv_instructions(self.irreps_in, self.irreps_sh, self.irreps_target)
        instr = sorted(instr, key=lambda t: t[2])  # mace orders paths (and weights) by output
        dt = dict(dtype=self.dtype_policy)
        self.linear_up = Linear(self.irreps_in, self.irreps_in, **dt)
        self.conv_tp = k3ops.TensorProductPlan(self.irreps_in, self.irreps_sh, mid, instr, name="MACEInteraction")
        self.conv_tp_weights = FullyConnectedNet([self.num_bessel] + self.radial_mlp + [self.conv_tp.weight_numel], "silu", **dt)
        self.linear = Linear(mid, self.irreps_target, **dt)
        # the residual maps the features to the product's output; without it the messages to themselves
        self.skip_tp = (FullyConnectedTensorProduct(self.irreps_in, attrs, self.irreps_out, **dt) if self.residual
                        else FullyConnectedTensorProduct(self.irreps_target, attrs, self.irreps_target, **dt))

    def build(self, *args, **kwargs):
        self.linear_up.build((None, self.irreps_in.dim))
        self.conv_tp_weights.build((None, self.num_bessel))
        self.linear.build((None, self.conv_tp.irreps_out.dim))
        self.skip_tp.build((None, self.skip_tp.irreps_in1.dim), (None, self.num_species))
        MACEInteraction.avg_num_neighbors.create(self)
        self.built = True

    def call(self, node_feats, node_attrs, edge_sh, edge_radial, senders, receivers):
        self.check_input(node_feats, self.irreps_in, "node_feats")
        x = ops.cast(node_feats, self.compute_dtype)
        attrs = ops.cast(node_attrs, self.compute_dtype)
        n = ops.shape(x)[0]
        hidden, last = self.conv_tp_weights.call_factored(edge_radial)  # weights hidden @ last, formed per block of edges
        msg = k3ops.scatter_tensor_product(self.conv_tp, self.linear_up(x), edge_sh, hidden, senders, receivers, n,
                                           weight_matrix=last)
        msg = self.linear(msg) / ops.cast(MACEInteraction.avg_num_neighbors.variable(self), x.dtype)
        if self.residual:
            return msg, self.skip_tp(x, attrs)
        return self.skip_tp(msg, attrs), None

    def get_config(self):
        config = super().get_config()
        config.update(num_bessel=self.num_bessel, radial_mlp=self.radial_mlp, num_species=self.num_species,
                      avg_num_neighbors=self.avg_num_neighbors, residual=self.residual)
        return config

    def compute_output_shape(self, node_shape, *args, **kwargs):
        """``[message shape, residual shape]`` (the residual's None without ``residual``)."""
        n = tuple(node_shape[:-1])
        return [n + (self.irreps_target.dim,), n + (self.irreps_out.dim,) if self.residual else None]

    def compute_output_spec(self, node_feats, *args, **kwargs):
        n, dt = node_feats.shape[0], self.compute_dtype
        msg = keras.KerasTensor((n, self.irreps_target.dim), dt)
        return (msg, keras.KerasTensor((n, self.irreps_out.dim), dt)) if self.residual else (msg, None)

    def __repr__(self):
        return f"MACEInteraction({self.irreps_in} x {self.irreps_sh} -> {self.irreps_target}, residual={self.residual})"


@keras.saving.register_keras_serializable(package="kerase3")
class MACEProduct(IrrepsLayer):
    """MACE's equivariant product basis (mace-torch's ``EquivariantProductBasisBlock``): the
    element-dependent symmetric contraction ``symmetric_contractions`` (body order
    ``correlation + 1``) then ``linear``; the interaction's residual, when given, is added.

    Example:
        >>> block = MACEProduct("4x0e + 4x1o", "4x0e", correlation=2, num_species=2)
        >>> tuple(block(np.ones((3, 16)), np.eye(2)[[0, 1, 1]]).shape)
        (3, 4)
    """

    _float_args = (0, 1)

    def __init__(self, irreps_in, irreps_out, correlation, num_species, allow_empty=False, **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in, irreps_out=irreps_out)
        self.correlation, self.num_species, self.allow_empty = int(correlation), int(num_species), bool(allow_empty)
        dt = dict(dtype=self.dtype_policy)
        self.symmetric_contractions = SymmetricContraction(self.irreps_in, self.irreps_out, self.correlation, self.num_species,
                                                           allow_empty=self.allow_empty, **dt)
        self.linear = Linear(self.irreps_out, self.irreps_out, **dt)

    def build(self, *args, **kwargs):
        self.symmetric_contractions.build()
        self.linear.build((None, self.irreps_out.dim))
        self.built = True

    def call(self, node_feats, node_attrs, sc=None):
        x = self.linear(self.symmetric_contractions(node_feats, node_attrs))
        return x if sc is None else x + ops.cast(sc, x.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(correlation=self.correlation, num_species=self.num_species, allow_empty=self.allow_empty)
        return config

    def compute_output_shape(self, node_shape, *args, **kwargs):
        return tuple(node_shape[:-1]) + (self.irreps_out.dim,)

    def __repr__(self):
        return f"MACEProduct({self.irreps_in} -> {self.irreps_out}, correlation={self.correlation})"


@keras.saving.register_keras_serializable(package="kerase3")
class MACEReadout(IrrepsLayer):
    """A MACE readout to one energy per atom ``(N, 1)``: ``linear`` (mace-torch's
    ``LinearReadoutBlock``), or with ``irreps_hidden`` ``linear_1``, the gate, ``linear_2``
    (``NonLinearReadoutBlock``; the gate normalised to unit second moment, as e3nn's).

    Example:
        >>> tuple(MACEReadout("4x0e + 4x1o", "2x0e")(np.ones((3, 16))).shape)
        (3, 1)
    """

    def __init__(self, irreps_in, irreps_hidden=None, gate="silu", **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in, irreps_hidden=irreps_hidden)
        if gate not in ("silu", None):
            raise ValueError(f"MACEReadout: gate must be 'silu' or None. Received: gate={gate!r}")
        self.gate = gate
        dt = dict(dtype=self.dtype_policy)
        if self.irreps_hidden is None:
            self.linear = Linear(self.irreps_in, "1x0e", **dt)
        else:
            self.linear_1 = Linear(self.irreps_in, self.irreps_hidden, **dt)
            self.linear_2 = Linear(self.irreps_hidden, "1x0e", **dt)
        self.gate_fn, self.gate_constant = normalize2mom(gate)

    def build(self, *args, **kwargs):
        for lay in self.linears:
            lay.build((None, lay.irreps_in.dim))
        self.built = True

    @property
    def linears(self):
        return [self.linear] if self.irreps_hidden is None else [self.linear_1, self.linear_2]

    def call(self, x):
        if self.irreps_hidden is None:
            return self.linear(x)
        h = self.linear_1(x)
        if self.gate_fn is not None:
            h = self.gate_fn(h) * self.gate_constant
        return self.linear_2(h)

    def compute_output_shape(self, x_shape):
        return tuple(x_shape[:-1]) + (1,)

    def get_config(self):
        config = super().get_config()
        config.update(gate=self.gate)
        return config

    def __repr__(self):
        return f"MACEReadout({self.irreps_in} -> {self.irreps_hidden or ''}{' -> ' if self.irreps_hidden else ''}1x0e)"
