import keras
from keras import ops

from .. import ops as k3ops
from ..ops import layout
from ..ops.layout import axis_size
from ..o3 import Irreps
from .base import IrrepsLayer, Statistic
from .fully_connected_net import FullyConnectedNet
from .linear import Linear
from .tensor_product_variants import FullyConnectedTensorProduct
from ..graph import keys as K


def conv_instructions(irreps_in, irreps_sh, irreps_out):
    """``uvu`` paths from ``irreps_in x irreps_sh`` to every irrep of ``irreps_out`` they can reach.

    Returns ``(irreps_mid, instructions)``, the middle irreps sorted (NequIP's construction).
    """
    mid, instr = [], []
    targets = {ir for _, ir in irreps_out}
    for i, (mul, ir_in) in enumerate(irreps_in):
        for j, (_, ir_sh) in enumerate(irreps_sh):
            for ir in ir_in * ir_sh:
                if ir in targets:
                    instr.append((i, j, len(mid), "uvu", True))
                    mid.append((mul, ir))
    mid, p, _ = Irreps(mid).sort()
    return mid, [(i, j, p[k], m, w) for i, j, k, m, w in instr]


@keras.saving.register_keras_serializable(package="kerase3")
class Convolution(IrrepsLayer):
    """Equivariant point convolution: learned radial filters times spherical harmonics.

    For every edge ``s -> r``: the radial basis of its length goes through a
    `FullyConnectedNet` to the weights of a ``uvu`` tensor product of the sender's features
    (after a `Linear`) with the edge's spherical harmonics; messages are summed at the
    receiver, divided by ``sqrt(avg_num_neighbors)``, mixed by a `Linear`, and a
    self-connection is added (a `Linear`, or a `FullyConnectedTensorProduct` with the node
    attributes, e.g. one-hot species, as in NequIP).

    Args:
        irreps_in: node features in.
        irreps_sh: spherical harmonics of the edges.
        irreps_out: node features out.
        number_of_basis: `int`, size of the radial embedding.
        radial_neurons: list of hidden widths of the radial network.
        avg_num_neighbors: `float`, a `Statistic` (a non-trainable variable once built: settable after
            ``build``, saved with the weights).
        irreps_node_attr: optional irreps of node attributes for the self-connection.
        radial_act: activation of the radial network.
        linear_biases: `bool`, biases on the scalar outputs of the two `Linear` around the product.

    Call arguments:
        node_features: `(N, irreps_in.dim)`.
        edge_sh: `(E, irreps_sh.dim)`.
        edge_radial: `(E, number_of_basis)` (zero for padding edges).
        senders, receivers: `(E,)` ints.
        node_attr: `(N, irreps_node_attr.dim)` when ``irreps_node_attr`` is set.

    Output shape:
        `(N, irreps_out.dim)`.

    Example:
        >>> conv = Convolution("4x0e", "0e + 1o", "4x0e + 2x1o", number_of_basis=3)
        >>> x, sh, radial = np.ones((2, 4)), np.ones((2, 4)), np.ones((2, 3))
        >>> tuple(conv(x, sh, radial, np.array([0, 1]), np.array([1, 0])).shape)
        (2, 10)
    """

    _float_args = (0, 1, 2)
    avg_num_neighbors = Statistic()

    def __init__(self, irreps_in, irreps_sh, irreps_out, number_of_basis, radial_neurons=(64,), avg_num_neighbors=1.0,
                 irreps_node_attr=None, radial_act="silu", linear_biases=False, **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in, irreps_sh=irreps_sh, irreps_out=irreps_out, irreps_node_attr=irreps_node_attr)
        i_in, i_sh, i_out = self.irreps_in, self.irreps_sh, self.irreps_out
        self.number_of_basis = int(number_of_basis)
        self.radial_neurons = [int(n) for n in radial_neurons]
        self.avg_num_neighbors = float(avg_num_neighbors)
        self.radial_act = radial_act
        self.linear_biases = bool(linear_biases)
        mid, instr = conv_instructions(i_in, i_sh, i_out)
        self.irreps_mid = mid
        dt = dict(dtype=self.dtype_policy)
        self.lin1 = Linear(i_in, i_in, biases=self.linear_biases, **dt)
        self.plan = k3ops.TensorProductPlan(i_in, i_sh, mid, instr, name="Convolution")
        self.radial = FullyConnectedNet([self.number_of_basis] + self.radial_neurons + [self.plan.weight_numel], radial_act, **dt)
        self.lin2 = Linear(mid, i_out, biases=self.linear_biases, **dt)
        if self.irreps_node_attr is None:
            self.self_connection = Linear(i_in, i_out, **dt)
        else:
            self.self_connection = FullyConnectedTensorProduct(i_in, self.irreps_node_attr, i_out, **dt)

    def build(self, node_shape=None, *args, **kwargs):
        n = self.irreps_in.dim
        self.lin1.build((None, n))
        self.radial.build((None, self.number_of_basis))
        self.lin2.build((None, self.irreps_mid.dim))
        if self.irreps_node_attr is None:
            self.self_connection.build((None, n))
        else:
            self.self_connection.build((None, n), (None, self.irreps_node_attr.dim))
        Convolution.avg_num_neighbors.create(self)

    def call(self, node_features, edge_sh, edge_radial, senders, receivers, node_attr=None):
        self.check_input(node_features, self.irreps_in, K.NODE_FEATURES)
        x = ops.cast(node_features, self.compute_dtype)
        out = self.call_blocks(layout.to_blocks(x, self.irreps_in), edge_sh, edge_radial, senders, receivers, node_attr)
        return layout.from_blocks(out, self.irreps_out, (-1,), x)

    def call_blocks(self, blocks, edge_sh, edge_radial, senders, receivers, node_attr=None):
        """The convolution on node features split into ir_mul blocks (`kerase3.ops.layout.to_blocks`):
        one ``[N, 2l+1, mul]`` per block of ``irreps_in`` -> one per block of ``irreps_out`` (None
        where ``mul = 0``). `InteractionStack` passes blocks from one convolution through its gate
        to the next without reordering them to e3nn's layout in between."""
        if self.irreps_node_attr is not None and node_attr is None:
            raise ValueError(f"Convolution: node_attr ({self.irreps_node_attr}) is required. Received: node_attr=None")
        like = next((b for b in blocks if b is not None), None)
        if like is None:
            raise ValueError(f"Convolution: node features of irreps {self.irreps_in} hold no block. Received: "
                             f"{len(blocks)} empty blocks")
        like = like[:, 0, :]
        # the radial network's last hidden features and last matrix: the kernel forms the path
        # weights a block of edges at a time (never E x weight_numel at once)
        hidden, last = self.radial.call_factored(edge_radial)
        num_nodes = axis_size(like, 0)
        # messages and their sums stay in the product kernel's layout
        mixed = self.lin1.call_blocks(blocks, like=like)
        agg = k3ops.scatter_tensor_product_blocks(self.plan, mixed, edge_sh, hidden, senders, receivers, num_nodes,
                                                  weight_matrix=last)
        scale = 1.0 / ops.sqrt(ops.cast(Convolution.avg_num_neighbors.variable(self), like.dtype))
        out = self.lin2.call_blocks([None if t is None else t * scale for t in agg], like=like)
        if node_attr is None:
            sc = self.self_connection.call_blocks(blocks, like=like)
        else:
            sc = self.self_connection.call_blocks(blocks, ops.cast(node_attr, like.dtype))
        return [a if b is None else b if a is None else a + b for a, b in zip(out, sc)]

    def compute_output_shape(self, node_shape, *args, **kwargs):
        return tuple(node_shape[:-1]) + (self.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(number_of_basis=self.number_of_basis, radial_neurons=self.radial_neurons,
                      avg_num_neighbors=self.avg_num_neighbors, radial_act=self.radial_act, linear_biases=self.linear_biases)
        return config

    def __repr__(self):
        return f"Convolution({self.irreps_in} x {self.irreps_sh} -> {self.irreps_out})"
