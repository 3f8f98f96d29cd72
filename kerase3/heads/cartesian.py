import keras
from keras import ops

from .. import ops as k3ops
from ..ops.cartesian import CartesianTensor
from ..layers import Linear
from ..layers.base import IrrepsLayer


@keras.saving.register_keras_serializable(package="kerase3")
class CartesianTensorHead(IrrepsLayer):
    """Cartesian tensors (dipoles, polarisabilities, Born charges, piezoelectric and elastic
    tensors) from equivariant node features, exactly equivariant.

    A `Linear` maps the node features to the irreps of the tensor (`kerase3.io.CartesianTensor`),
    which are summed (or averaged) per graph for ``per="graph"`` and turned into the Cartesian
    tensor. Every irrep of the tensor must be present in ``irreps_in``.

    Args:
        formula: ``"i"`` (vector), ``"ij=ji"`` (polarisability), ``"ij"`` (Born charges, per node),
            ``"ijk=ikj"`` (piezoelectric), ``"ijkl=jikl=klij"`` (elasticity), ...
        irreps_in: node features.
        per: ``"graph"`` or ``"node"``.
        reduce: ``"sum"`` or ``"mean"`` over the nodes of a graph.

    Call arguments:
        node_features `(N, irreps_in.dim)`; for ``per="graph"``: node_graph `(N,)`, num_graphs (int),
        optional node_mask `(N,)`.

    Output: `(G or N, 3, 3, ...)`.

    Example:
        >>> import numpy as np
        >>> head = CartesianTensorHead("ij=ji", "2x0e + 1x2e", per="node")
        >>> tuple(head(np.ones((5, 7))).shape)
        (5, 3, 3)
    """

    def __init__(self, formula, irreps_in, per="graph", reduce="sum", **kwargs):
        super().__init__(**kwargs)
        self.tensor = CartesianTensor(formula)
        self.formula = formula
        self.set_irreps(irreps_in=irreps_in)
        i_in = self.irreps_in
        missing = [str(ir) for _, ir in self.tensor.irreps if ir not in [x for _, x in i_in]]
        if missing:
            raise ValueError(f"CartesianTensorHead: the tensor {formula!r} ({self.tensor.irreps}) needs irreps {missing} "
                             f"that irreps_in={i_in} lacks")
        if per not in ("graph", "node") or reduce not in ("sum", "mean"):
            raise ValueError(f"CartesianTensorHead: per must be 'graph' or 'node' and reduce 'sum' or 'mean'. "
                             f"Received: per={per!r}, reduce={reduce!r}")
        self.per, self.reduce = per, reduce
        self.linear = Linear(i_in, self.tensor.irreps, dtype=self.dtype_policy)

    def build(self, *args, **kwargs):
        self.linear.build((None, self.irreps_in.dim))
        self.built = True

    def call(self, node_features, node_graph=None, num_graphs=None, node_mask=None):
        x = self.linear(node_features)
        if self.per == "graph":
            if node_graph is None or num_graphs is None:
                raise ValueError("CartesianTensorHead: per='graph' needs node_graph and num_graphs. "
                                 f"Received: node_graph={node_graph is not None}, num_graphs={num_graphs}")
            x = k3ops.graph_pool(x, node_graph, num_graphs, self.reduce, node_mask)
        elif node_mask is not None:
            x = x * ops.cast(node_mask, x.dtype)[:, None]
        return self.tensor.to_cartesian(x)

    def compute_output_shape(self, node_shape, *args, **kwargs):
        # per node: one tensor per node; per graph: the number of graphs is a call argument
        return ((node_shape[0],) if self.per == "node" else (None,)) + self.tensor.shape

    def get_config(self):
        config = super().get_config()
        config.update(formula=self.formula, per=self.per, reduce=self.reduce)
        return config

    def __repr__(self):
        return f"CartesianTensorHead({self.formula!r}: {self.irreps_in} -> {self.tensor.irreps}, per={self.per!r})"
