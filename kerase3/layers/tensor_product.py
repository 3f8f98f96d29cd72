import keras

from .. import ops as k3ops
from .base import IrrepsLayer, normal_init


@keras.saving.register_keras_serializable(package="kerase3")
class TensorProduct(IrrepsLayer):
    """Clebsch-Gordan tensor product by instruction list (e3nn's ``o3.TensorProduct``).

    Args:
        irreps_in1, irreps_in2, irreps_out: irreps (strings or ``Irreps``).
        instructions: list of ``(i_in1, i_in2, i_out, mode, has_weight[, path_weight])``;
            modes ``uvw``, ``uvu``, ``uvv``, ``uuw``, ``uuu``, ``uvuv``, ``uvu<v``, ``u<vw``.
        irrep_normalization: ``"component"``, ``"norm"`` or ``"none"``.
        path_normalization: ``"element"``, ``"path"`` or ``"none"``.
        internal_weights: `bool`; default: True when weights are shared and some path has weights.
        shared_weights: `bool`; default True. With ``shared_weights=False`` call
            ``layer(x1, x2, weight)`` with weights ``(..., weight_numel)`` broadcast against
            the batch (how a radial network conditions a convolution per edge).
        in1_var, in2_var, out_var: optional variances per block, e3nn's meaning.

    Call arguments:
        x1: `(..., irreps_in1.dim)`.
        x2: `(..., irreps_in2.dim)`.
        weight: optional `(weight_numel,)` or `(..., weight_numel)` when not internal.

    Output shape:
        `(..., irreps_out.dim)`.

    Example:
        >>> tp = TensorProduct("2x1o", "1x1o", "2x0e", [(0, 0, 0, "uvu", True)])
        >>> tp.weight_numel, tuple(tp(np.ones((3, 6)), np.ones((3, 3))).shape)
        (2, (3, 2))
    """

    _float_args = (0, 1)

    def __init__(self, irreps_in1, irreps_in2, irreps_out, instructions, irrep_normalization="component",
                 path_normalization="element", internal_weights=None, shared_weights=None,
                 in1_var=None, in2_var=None, out_var=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.set_irreps(irreps_in1=irreps_in1, irreps_in2=irreps_in2, irreps_out=irreps_out)
        self.instructions = [list(i) for i in instructions]
        self.irrep_normalization = irrep_normalization
        self.path_normalization = path_normalization
        self.in1_var, self.in2_var, self.out_var = in1_var, in2_var, out_var
        self.internal_weights = internal_weights
        self.shared_weights = shared_weights
        self.plan = k3ops.TensorProductPlan(
            self.irreps_in1, self.irreps_in2, self.irreps_out, instructions, irrep_normalization,
            path_normalization, in1_var, in2_var, out_var, name=name,
        )
        shared = True if shared_weights is None else bool(shared_weights)
        internal = internal_weights
        if shared_weights is False and internal is None:
            internal = False
        if internal is None:
            internal = shared and any(i.has_weight for i in self.plan.instructions)
        if internal and not shared:
            raise ValueError(f"{name}: internal weights must be shared. Received: internal_weights=True, shared_weights=False")
        self._shared = shared
        self._internal = bool(internal)

    @property
    def weight_numel(self):
        return self.plan.weight_numel

    def build(self, *args, **kwargs):
        if self._internal and self.weight_numel > 0:
            self.weight = self.add_weight(name="weight", shape=(self.weight_numel,), initializer=normal_init())

    def call(self, x1, x2, weight=None):
        if self._internal and self.weight_numel > 0:
            weight = self.weight
        elif self.weight_numel > 0 and weight is None:
            raise ValueError(
                f"{type(self).__name__}: this layer has external weights; call it as layer(x1, x2, weight) with "
                f"weight of shape (..., {self.weight_numel}). Received: weight=None"
            )
        return k3ops.tensor_product(self.plan, x1, x2, weight, shared_weights=self._shared)

    def call_blocks(self, blocks1, x2):
        """The layer with ``x1`` split into ir_mul blocks, in and out (`kerase3.ops.tensor_product_blocks`):
        one ``[Z, 2l+1, mul]`` per block of ``irreps_in1`` -> one per block of ``irreps_out`` (None
        where no path reaches it). Internal weights only."""
        if not self._internal:
            raise ValueError(f"{type(self).__name__}.call_blocks: needs internal weights ({self.plan.irreps_in1} x "
                             f"{self.plan.irreps_in2} -> {self.plan.irreps_out})")
        return k3ops.tensor_product_blocks(self.plan, blocks1, x2, self.weight if self.weight_numel > 0 else None)

    def compute_output_shape(self, x1_shape, x2_shape=None, weight_shape=None):
        return tuple(x1_shape[:-1]) + (self.plan.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            instructions=self.instructions,
            irrep_normalization=self.irrep_normalization,
            path_normalization=self.path_normalization,
            internal_weights=self.internal_weights,
            shared_weights=self.shared_weights,
            in1_var=self.in1_var,
            in2_var=self.in2_var,
            out_var=self.out_var,
        )
        return config

    def __repr__(self):
        npath = sum(1 for _ in self.plan.instructions)
        return (
            f"{type(self).__name__}({self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out} "
            f"| {npath} paths | {self.weight_numel} weights)"
        )
