"""Gated interaction blocks: `Convolution` -> `Gate`, repeated (e3nn's gated networks, NequIP)."""

import keras
from keras import ops

from ..o3 import Irrep, Irreps
from ..ops import layout
from .base import IrrepsLayer, irreps_arg, renamed_arguments
from .convolution import Convolution
from .gate import Gate
from ..graph import keys as K

__all__ = ["InteractionStack", "gated_block_irreps", "path_exists", "activations_by_parity", "is_per_block"]


def path_exists(irreps_in1, irreps_in2, ir_out):
    """Whether some irrep of ``irreps_in1`` times some irrep of ``irreps_in2`` contains ``ir_out``."""
    ir_out = Irrep(ir_out)
    return any(ir_out in ir1 * ir2 for _, ir1 in irreps_in1 for _, ir2 in irreps_in2)


def is_per_block(irreps_hidden):
    """Whether hidden irreps are given one per block (a list or tuple of irreps), not one `Irreps`
    (itself a tuple) or string for every block."""
    return isinstance(irreps_hidden, (list, tuple)) and not isinstance(irreps_hidden, Irreps)


SCALAR_ACTIVATIONS = {"e": "silu", "o": "tanh"}
GATE_ACTIVATIONS = {"e": "sigmoid", "o": "tanh"}


def activations_by_parity(acts, default, layer="gated_block_irreps", arg="activations"):
    """``{"e": name, "o": name}`` from None (``default``) or a mapping keyed by ``"e"``/``"o"`` or ``1``/``-1``."""
    if acts is None:
        return dict(default)
    if not isinstance(acts, dict):
        raise ValueError(f"{layer}: {arg} maps a parity ('e', 'o') to an activation. Received: {acts!r}")
    out = dict(default)
    for key, act in acts.items():
        name = {1: "e", -1: "o", "1": "e", "-1": "o"}.get(key, key)
        if name not in ("e", "o"):
            raise ValueError(f"{layer}: {arg} has keys 'e' and 'o' (or 1 and -1). Received: key {key!r} in {acts!r}")
        out[name] = act
    return out


def gated_block_irreps(irreps_node, irreps_sh, irreps_hidden, scalar_activations=None, gate_activations=None, strict=False):
    """``(scalars, act_scalars, gates, act_gates, gated)`` of one gated block of e3nn's networks:
    the hidden irreps a convolution of ``irreps_node`` with ``irreps_sh`` can reach, scalars
    activated by ``scalar_activations`` (by parity; default silu even, tanh odd), one gate scalar per
    gated irrep copy activated by ``gate_activations`` (default sigmoid even, tanh odd).

    With ``strict``, hidden irreps the convolution cannot reach raise a ``ValueError`` naming them
    (instead of being left out, e3nn's rule for one set of hidden irreps shared by every block)."""
    reach = [path_exists(irreps_node, irreps_sh, ir) for _, ir in irreps_hidden]
    if strict and not all(reach):
        missing = Irreps([(m, ir) for (m, ir), ok in zip(irreps_hidden, reach) if not ok])
        raise ValueError(f"InteractionStack: hidden irreps {missing} cannot be reached from {irreps_node} x {irreps_sh} "
                         f"(asked for {irreps_hidden})")
    act_s_by_p = activations_by_parity(scalar_activations, SCALAR_ACTIVATIONS, arg="scalar_activations")
    act_g_by_p = activations_by_parity(gate_activations, GATE_ACTIVATIONS, arg="gate_activations")
    scalars = Irreps([(m, ir) for (m, ir), ok in zip(irreps_hidden, reach) if ir.l == 0 and ok]).simplify()
    gated = Irreps([(m, ir) for (m, ir), ok in zip(irreps_hidden, reach) if ir.l > 0 and ok])
    gate_ir = "0e" if path_exists(irreps_node, irreps_sh, "0e") else "0o"
    gates = Irreps([(m, gate_ir) for m, _ in gated]).simplify()
    act_s = [act_s_by_p["e" if ir.p == 1 else "o"] for _, ir in scalars]
    act_g = [act_g_by_p["e" if ir.p == 1 else "o"] for _, ir in gates]
    return scalars, act_s, gates, act_g, gated.simplify()


@keras.saving.register_keras_serializable(package="kerase3")
class InteractionStack(IrrepsLayer):
    """``num_interactions`` gated interaction blocks: `Convolution` (radial filters x spherical harmonics,
    optional species self-connection) followed by a `Gate`, each block reaching the hidden irreps
    its input can reach (`gated_block_irreps`).

    Args:
        irreps_in: node features entering the first block.
        irreps_sh: irreps of the edge spherical harmonics.
        irreps_hidden: hidden irreps, e.g. ``"32x0e + 32x1o + 32x2e"`` (every block reaches what it
            can of them), or a list of one per block (each block must reach all of its own: a
            ``ValueError`` names the unreachable ones).
        num_interactions: `int`, number of blocks (formerly ``layers``).
        number_of_basis: `int`, size of the radial embedding.
        radial_neurons: hidden widths of the radial networks.
        avg_num_neighbors: `float` (messages are divided by its root; held by every `Convolution`
            as a `Statistic`, settable after build).
        irreps_node_attr: optional node attributes (one-hot species) for the self-connections.
        self_connection: ``"species"`` (a tensor product of the features with ``node_attr``, NequIP's;
            the default when ``irreps_node_attr`` is set) or ``"linear"`` (a `Linear` of the features).
        scalar_activations, gate_activations: activations by parity, ``{"e": ..., "o": ...}``
            (defaults silu/tanh and sigmoid/tanh).
        radial_act: activation of the radial networks.
        linear_biases: `bool`, biases on the scalar outputs of every convolution's two `Linear`.

    Call arguments:
        node_features `(N, irreps_in.dim)`, edge_sh `(E, irreps_sh.dim)`, edge_radial
        `(E, number_of_basis)`, senders and receivers `(E,)`, node_attr when ``irreps_node_attr`` is set.

    Output shape:
        `(N, irreps_out.dim)`; ``irreps_out`` is the last gate's output.

    Example:
        >>> stack = InteractionStack("4x0e", "0e + 1o", "4x0e + 4x1o", num_interactions=2, number_of_basis=3)
        >>> str(stack.irreps_out), len(stack.convs)
        ('4x0e+4x1o', 2)
    """

    _float_args = (0, 1, 2)

    def __init__(self, irreps_in, irreps_sh, irreps_hidden, num_interactions=None, number_of_basis=None, radial_neurons=(64,),
                 avg_num_neighbors=1.0, irreps_node_attr=None, self_connection=None, scalar_activations=None,
                 gate_activations=None, radial_act="silu", linear_biases=False, **kwargs):
        num_interactions = renamed_arguments(kwargs, {"layers": "num_interactions"}, "InteractionStack").get(
            "num_interactions", num_interactions)
        if num_interactions is None or number_of_basis is None:
            raise ValueError(f"InteractionStack: num_interactions and number_of_basis are required. Received: "
                             f"num_interactions={num_interactions}, number_of_basis={number_of_basis}")
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in, irreps_sh=irreps_sh, irreps_node_attr=irreps_node_attr)
        self.num_interactions, self.number_of_basis = int(num_interactions), int(number_of_basis)
        self.per_block = is_per_block(irreps_hidden)
        if self.per_block and len(irreps_hidden) != self.num_interactions:
            raise ValueError(f"InteractionStack: irreps_hidden needs one entry per block ({self.num_interactions}). "
                             f"Received: {len(irreps_hidden)} entries {list(irreps_hidden)}")
        hidden = list(irreps_hidden) if self.per_block else [irreps_hidden] * self.num_interactions
        self.irreps_hidden_blocks = [irreps_arg(h, "InteractionStack", f"irreps_hidden[{i}]") for i, h in enumerate(hidden)]
        self.irreps_hidden = (self.irreps_hidden_blocks if self.per_block
                              else irreps_arg(irreps_hidden, "InteractionStack", "irreps_hidden"))  # also with 0 blocks
        if self_connection is None:
            self_connection = "linear" if self.irreps_node_attr is None else "species"
        if self_connection not in ("species", "linear"):
            raise ValueError(f"InteractionStack: self_connection must be 'species' or 'linear'. Received: {self_connection!r}")
        if self_connection == "species" and self.irreps_node_attr is None:
            raise ValueError("InteractionStack: self_connection='species' needs irreps_node_attr. Received: irreps_node_attr=None")
        self.self_connection = self_connection
        self.scalar_activations = activations_by_parity(scalar_activations, SCALAR_ACTIVATIONS, "InteractionStack", "scalar_activations")
        self.gate_activations = activations_by_parity(gate_activations, GATE_ACTIVATIONS, "InteractionStack", "gate_activations")
        self.radial_act = radial_act
        self.linear_biases = bool(linear_biases)
        self.radial_neurons = [int(n) for n in radial_neurons]
        self._avg_num_neighbors = float(avg_num_neighbors)
        dt = dict(dtype=self.dtype_policy)
        self.convs, self.gates = [], []
        irreps = self.irreps_in
        sc_attr = self.irreps_node_attr if self_connection == "species" else None
        for hidden_irreps in self.irreps_hidden_blocks:
            scalars, act_scalars, gates, act_gates, gated = gated_block_irreps(
                irreps, self.irreps_sh, hidden_irreps, self.scalar_activations, self.gate_activations, strict=self.per_block)
            gate = Gate(scalars, act_scalars, gates, act_gates, gated, **dt)
            self.convs.append(Convolution(irreps, self.irreps_sh, gate.irreps_in, self.number_of_basis, self.radial_neurons,
                                          self._avg_num_neighbors, sc_attr, radial_act=radial_act,
                                          linear_biases=self.linear_biases, **dt))
            self.gates.append(gate)
            irreps = gate.irreps_out
        self.irreps_out = Irreps(irreps)

    @property
    def avg_num_neighbors(self):
        return self.convs[0].avg_num_neighbors if self.convs else self._avg_num_neighbors

    @avg_num_neighbors.setter
    def avg_num_neighbors(self, value):
        """Set on every convolution (a variable of each once built: no new trace needed)."""
        self._avg_num_neighbors = float(value)
        for conv in self.convs:
            conv.avg_num_neighbors = self._avg_num_neighbors

    def build(self, *args, **kwargs):
        """Create every weight from the irreps alone."""
        for conv, gate in zip(self.convs, self.gates):
            conv.build((None, conv.irreps_in.dim))
            gate.build((None, gate.irreps_in.dim))
        self.built = True

    def call(self, node_features, edge_sh, edge_radial, senders, receivers, node_attr=None):
        self.check_input(node_features, self.irreps_in, K.NODE_FEATURES)
        x = ops.cast(node_features, self.compute_dtype)
        # features stay in ir_mul blocks from the first convolution to the last gate
        blocks = layout.to_blocks(x, self.irreps_in)
        for conv, gate in zip(self.convs, self.gates):
            attr = node_attr if conv.irreps_node_attr is not None else None
            blocks = gate.call_blocks(conv.call_blocks(blocks, edge_sh, edge_radial, senders, receivers, attr))
        return layout.from_blocks(blocks, self.irreps_out, (-1,), x)

    def compute_output_shape(self, node_shape, *args, **kwargs):
        return tuple(node_shape[:-1]) + (self.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(num_interactions=self.num_interactions, number_of_basis=self.number_of_basis, radial_neurons=self.radial_neurons,
                      avg_num_neighbors=self.avg_num_neighbors, self_connection=self.self_connection,
                      scalar_activations=self.scalar_activations, gate_activations=self.gate_activations,
                      radial_act=self.radial_act, linear_biases=self.linear_biases,
                      irreps_hidden=[str(h) for h in self.irreps_hidden_blocks] if self.per_block else str(self.irreps_hidden))
        return config

    def __repr__(self):
        return f"InteractionStack({self.irreps_in} -> {self.irreps_out}, {self.num_interactions} blocks)"
