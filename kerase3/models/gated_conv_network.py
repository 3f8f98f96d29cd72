import math

import keras
from keras import ops

from .. import ops as k3ops
from ..layers import Convolution, EdgeEmbedding, InteractionStack
from ..layers.base import SharedStatistic, renamed_arguments
from ..o3 import Irreps
from ..ops.layout import axis_size
from ._training import KeepsGeometry, TracesOnce
from ..graph import keys as K


@keras.saving.register_keras_serializable(package="kerase3")
class GatedConvNetwork(KeepsGeometry, TracesOnce, keras.Model):
    """e3nn's gated convolution network with parity (``gate_points_2101``): any irreps in and out.

    ``num_interactions`` blocks of `Convolution` + `Gate` on hidden irreps ``mul x (0e+0o+1o+1e+...)`` up to
    ``lmax``, then a final `Convolution` to ``irreps_out``; per-graph pooling optional.

    Args:
        irreps_in: node input features (e.g. ``"0e"`` for ones).
        irreps_out: output irreps.
        mul: `int`, multiplicity of every hidden irrep.
        lmax: `int`, largest degree of hidden features and spherical harmonics.
        num_interactions: `int`, number of gated blocks (formerly ``layers``).
        cutoff: `float`, cutoff of the radial basis (formerly ``max_radius``).
        number_of_basis: `int`.
        radial_neurons: hidden widths of the radial networks.
        avg_num_neighbors: `float`, typical number of neighbours (messages are divided by its root;
            formerly ``num_neighbors``).
        num_nodes: `float`, typical atoms per graph (pooled sums are divided by its root).
        pool: ``"sum"``, ``"mean"`` or None (per-node outputs).

    Inputs (a dict of tensors, the batch layout of ``kerase3.graph``):
        ``node_features (N, irreps_in.dim)``, ``positions (N, 3)``, ``senders (E,)``,
        ``receivers (E,)``; optional ``shifts (E, 3)``, ``cell (G, 3, 3)``, ``node_graph (N,)``,
        ``graph_mask (G,)`` (its length is the number of graphs), ``node_mask (N,)``.

    Output:
        ``(G, irreps_out.dim)`` when pooling, else ``(N, irreps_out.dim)``.

    Example:
        >>> import numpy as np
        >>> from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
        >>> net = GatedConvNetwork("0e", "1o", mul=4, lmax=1, num_interactions=1, cutoff=2.0)
        >>> g = graph_from_arrays(np.array([[0.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]]), [1, 1, 1], 2.0)
        >>> tuple(net(dict(pad_batch(batch_graphs([g]), 4, 8, 2), node_features=np.ones((4, 1)))).shape)
        (2, 3)
    """

    avg_num_neighbors = SharedStatistic("final", "interactions")

    def __init__(self, irreps_in, irreps_out, mul=16, lmax=2, num_interactions=3, cutoff=2.0, number_of_basis=10,
                 radial_neurons=(100,), avg_num_neighbors=1.0, num_nodes=1.0, pool="sum", **kwargs):
        renamed = renamed_arguments(kwargs, {"layers": "num_interactions", "max_radius": "cutoff",
                                             "num_neighbors": "avg_num_neighbors"}, "GatedConvNetwork")
        num_interactions = renamed.get("num_interactions", num_interactions)
        cutoff = renamed.get("cutoff", cutoff)
        avg_num_neighbors = renamed.get("avg_num_neighbors", avg_num_neighbors)
        super().__init__(**kwargs)
        self.irreps_in, self.irreps_out = str(Irreps(irreps_in)), str(Irreps(irreps_out))
        self.mul, self.lmax, self.num_interactions = int(mul), int(lmax), int(num_interactions)
        self.cutoff, self.number_of_basis = float(cutoff), int(number_of_basis)
        self.radial_neurons = [int(n) for n in radial_neurons]
        self.num_nodes, self.pool = float(num_nodes), pool
        if pool not in ("sum", "mean", None):
            raise ValueError(f"GatedConvNetwork: pool must be 'sum', 'mean' or None. Received: pool={pool!r}")
        hidden = Irreps([(self.mul, (l, p)) for l in range(self.lmax + 1) for p in (-1, 1)])
        dt = dict(dtype=self.dtype_policy)
        self.edges = EdgeEmbedding(self.lmax, self.number_of_basis, self.cutoff, radial_basis="smooth_finite",
                                   radial_cutoff=True, radial_scale=math.sqrt(self.number_of_basis), **dt)
        irreps_sh = self.edges.irreps_sh
        self.interactions = InteractionStack(irreps_in, irreps_sh, hidden, self.num_interactions, self.number_of_basis,
                                             self.radial_neurons, avg_num_neighbors, **dt)
        reach = {ir for _, ir1 in self.interactions.irreps_out for _, ir2 in irreps_sh for ir in ir1 * ir2}
        missing = [str(ir) for _, ir in Irreps(irreps_out) if ir not in reach]
        if missing:
            raise ValueError(f"GatedConvNetwork: irreps_out={Irreps(irreps_out)} holds {missing}, which the last convolution "
                             f"of {self.interactions.irreps_out} with {irreps_sh} can not reach; raise lmax")
        self.final = Convolution(self.interactions.irreps_out, irreps_sh, irreps_out, self.number_of_basis,
                                 self.radial_neurons, avg_num_neighbors, **dt)

    def build(self, input_shape=None):
        """Create every weight from the irreps alone (so ``.keras`` files reload without data)."""
        self.edges.build()
        self.interactions.build()
        self.final.build((None, self.final.irreps_in.dim))
        self.built = True

    def call(self, inputs):
        senders, receivers = inputs[K.SENDERS], inputs[K.RECEIVERS]
        node_graph = inputs.get(K.NODE_GRAPH)
        edges = self.edges(inputs[K.POSITIONS], senders, receivers, inputs.get(K.SHIFTS), inputs.get(K.CELL), node_graph)
        x = ops.cast(inputs[K.NODE_FEATURES], self.compute_dtype)
        x = self.interactions(x, edges["sh"], edges["radial"], senders, receivers)
        x = self.final(x, edges["sh"], edges["radial"], senders, receivers)
        if self.pool is None:
            return x
        num_graphs = axis_size(inputs[K.GRAPH_MASK], 0)
        if node_graph is None:
            raise ValueError("GatedConvNetwork: pooling needs inputs['node_graph']. Received: no node_graph")
        out = k3ops.graph_pool(x, node_graph, num_graphs, self.pool, inputs.get(K.NODE_MASK))
        return out / math.sqrt(self.num_nodes) if self.pool == "sum" else out

    def serving_signatures(self, dtype="float32", max_edges=None):
        """TF Serving endpoints (see `kerase3.export.export_saved_model`): ``(endpoints, examples)``;
        ``max_edges`` bounds the in-graph neighbour list (default 1 million)."""
        from .serving import gated_conv_signatures

        return gated_conv_signatures(self, dtype, max_edges)

    def get_config(self):
        config = super().get_config()
        config.update(irreps_in=self.irreps_in, irreps_out=self.irreps_out, mul=self.mul, lmax=self.lmax,
                      num_interactions=self.num_interactions, cutoff=self.cutoff, number_of_basis=self.number_of_basis,
                      radial_neurons=self.radial_neurons, avg_num_neighbors=self.avg_num_neighbors, num_nodes=self.num_nodes,
                      pool=self.pool)
        return config

    def __repr__(self):
        return f"GatedConvNetwork({self.irreps_in} -> {self.irreps_out}, mul={self.mul}, lmax={self.lmax}, num_interactions={self.num_interactions})"
