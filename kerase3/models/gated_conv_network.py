import math

import keras
from keras import ops

from .. import ops as k3ops
from ..ops._layout import axis_size
from ..layers import Convolution, Gate, RadialBasis, SphericalHarmonics
from ..o3 import Irrep, Irreps


def path_exists(irreps_in1, irreps_in2, ir_out):
    ir_out = Irrep(ir_out)
    return any(ir_out in ir1 * ir2 for _, ir1 in irreps_in1 for _, ir2 in irreps_in2)


def gated_block_irreps(irreps_node, irreps_sh, irreps_hidden):
    """``(scalars, act_scalars, gates, act_gates, gated)`` of e3nn's gated networks."""
    scalars = Irreps([(m, ir) for m, ir in irreps_hidden if ir.l == 0 and path_exists(irreps_node, irreps_sh, ir)]).simplify()
    gated = Irreps([(m, ir) for m, ir in irreps_hidden if ir.l > 0 and path_exists(irreps_node, irreps_sh, ir)])
    gate_ir = "0e" if path_exists(irreps_node, irreps_sh, "0e") else "0o"
    gates = Irreps([(m, gate_ir) for m, _ in gated]).simplify()
    act_s = [{1: "silu", -1: "tanh"}[ir.p] for _, ir in scalars]
    act_g = [{1: "sigmoid", -1: "tanh"}[ir.p] for _, ir in gates]
    return scalars, act_s, gates, act_g, gated.simplify()


def gated_blocks(irreps, irreps_sh, irreps_hidden, layers, dtype=None, **conv_kwargs):
    """``(convs, gates, irreps_out)``: ``layers`` x (`Convolution` -> `Gate`) starting from ``irreps``
    (``conv_kwargs``: ``number_of_basis``, ``radial_neurons``, ``avg_num_neighbors``, ``irreps_node_attr``)."""
    convs, gates = [], []
    for _ in range(layers):
        sc, act_s, ga, act_g, gd = gated_block_irreps(irreps, irreps_sh, irreps_hidden)
        gate = Gate(sc, act_s, ga, act_g, gd, dtype=dtype)
        convs.append(Convolution(irreps, irreps_sh, gate.irreps_in, dtype=dtype, **conv_kwargs))
        gates.append(gate)
        irreps = gate.irreps_out
    return convs, gates, irreps


@keras.saving.register_keras_serializable(package="kerase3")
class GatedConvNetwork(keras.Model):
    """e3nn's gated convolution network with parity (``gate_points_2101``): any irreps in and out.

    ``layers`` blocks of `Convolution` + `Gate` on hidden irreps ``mul x (0e+0o+1o+1e+...)`` up to
    ``lmax``, then a final `Convolution` to ``irreps_out``; per-graph pooling optional.

    Args:
        irreps_in: node input features (e.g. ``"0e"`` for ones).
        irreps_out: output irreps.
        mul: `int`, multiplicity of every hidden irrep.
        lmax: `int`, largest degree of hidden features and spherical harmonics.
        layers: `int`, number of gated blocks.
        max_radius: `float`, cutoff of the radial basis.
        number_of_basis: `int`.
        radial_neurons: hidden widths of the radial networks.
        num_neighbors: `float`, typical number of neighbours (messages are divided by its root).
        num_nodes: `float`, typical atoms per graph (pooled sums are divided by its root).
        pool: ``"sum"``, ``"mean"`` or None (per-node outputs).

    Inputs (a dict of tensors, the batch layout of ``kerase3.graph``):
        ``node_features (N, irreps_in.dim)``, ``positions (N, 3)``, ``senders (E,)``,
        ``receivers (E,)``; optional ``shifts (E, 3)``, ``cell (G, 3, 3)``, ``node_graph (N,)``,
        ``graph_mask (G,)`` (its length is the number of graphs), ``node_mask (N,)``.

    Output:
        ``(G, irreps_out.dim)`` when pooling, else ``(N, irreps_out.dim)``.
    """

    def __init__(self, irreps_in, irreps_out, mul=16, lmax=2, layers=3, max_radius=2.0, number_of_basis=10,
                 radial_neurons=(100,), num_neighbors=1.0, num_nodes=1.0, pool="sum", **kwargs):
        super().__init__(**kwargs)
        self.irreps_in, self.irreps_out = str(Irreps(irreps_in)), str(Irreps(irreps_out))
        self.mul, self.lmax, self.num_layers = int(mul), int(lmax), int(layers)
        self.max_radius, self.number_of_basis = float(max_radius), int(number_of_basis)
        self.radial_neurons = [int(n) for n in radial_neurons]
        self.num_neighbors, self.num_nodes, self.pool = float(num_neighbors), float(num_nodes), pool
        if pool not in ("sum", "mean", None):
            raise ValueError(f"GatedConvNetwork: pool must be 'sum', 'mean' or None. Received: pool={pool!r}")
        irreps_sh = Irreps.spherical_harmonics(self.lmax)
        hidden = Irreps([(self.mul, (l, p)) for l in range(self.lmax + 1) for p in (-1, 1)])
        dt = dict(dtype=self.dtype_policy)
        self.sh = SphericalHarmonics(irreps_sh, normalize=True, normalization="component", **dt)
        self.radial = RadialBasis(self.number_of_basis, self.max_radius, basis="smooth_finite", cutoff=True,
                                  scale=math.sqrt(self.number_of_basis), **dt)
        conv_kw = dict(number_of_basis=self.number_of_basis, radial_neurons=self.radial_neurons,
                       avg_num_neighbors=self.num_neighbors)
        self.convs, self.gates, irreps = gated_blocks(Irreps(irreps_in), irreps_sh, hidden, self.num_layers,
                                                      self.dtype_policy, **conv_kw)
        self.final = Convolution(irreps, irreps_sh, irreps_out, **conv_kw, **dt)

    def build(self, input_shape=None):
        """Create every weight from the irreps alone (so ``.keras`` files reload without data)."""
        self.radial.build((None,))
        self.sh.build((None, 3))
        for gate in self.gates:
            gate.build((None, gate.irreps_in.dim))
        for conv in self.convs + [self.final]:
            conv.build((None, Irreps(conv.irreps_in).dim))
        self.built = True

    def call(self, inputs):
        x = inputs["node_features"]
        pos = inputs["positions"]
        senders, receivers = inputs["senders"], inputs["receivers"]
        node_graph = inputs.get("node_graph")
        vec = k3ops.edge_vectors(pos, senders, receivers, inputs.get("shifts"), inputs.get("cell"), node_graph)
        sh = self.sh(vec)
        r2 = ops.sum(ops.square(vec), axis=-1)
        r = ops.where(r2 > 0, ops.sqrt(ops.where(r2 > 0, r2, ops.ones_like(r2))), ops.zeros_like(r2))
        radial = ops.cast(self.radial(r), x.dtype)
        sh = ops.cast(sh, x.dtype)
        for conv, gate in zip(self.convs, self.gates):
            x = gate(conv(x, sh, radial, senders, receivers))
        x = self.final(x, sh, radial, senders, receivers)
        if self.pool is None:
            return x
        num_graphs = axis_size(inputs["graph_mask"], 0)
        if node_graph is None:
            raise ValueError("GatedConvNetwork: pooling needs inputs['node_graph']. Received: no node_graph")
        out = k3ops.graph_pool(x, node_graph, num_graphs, self.pool, inputs.get("node_mask"))
        return out / math.sqrt(self.num_nodes) if self.pool == "sum" else out

    def get_config(self):
        config = super().get_config()
        config.update(irreps_in=self.irreps_in, irreps_out=self.irreps_out, mul=self.mul, lmax=self.lmax,
                      layers=self.num_layers, max_radius=self.max_radius, number_of_basis=self.number_of_basis,
                      radial_neurons=self.radial_neurons, num_neighbors=self.num_neighbors, num_nodes=self.num_nodes,
                      pool=self.pool)
        return config

    def __repr__(self):
        return f"GatedConvNetwork({self.irreps_in} -> {self.irreps_out}, mul={self.mul}, lmax={self.lmax}, layers={self.num_layers})"
