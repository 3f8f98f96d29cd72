"""Clebsch-Gordan tensor products by instruction list, on ``keras.ops``.

`tensor_product` checks and flattens its inputs and hands them to the kernel its plan chose when
it was made (`TensorProductPlan.kernel`):

- ``"coupled"`` (`kerase3.ops._coupled`): every path a weighted ``uvu`` with a one-channel second
  input -- the convolution product of NequIP, MACE and `kerase3.layers.Convolution` -- with a
  hand-written gradient of every order;
- ``"general"`` (`kerase3.ops._general`): every connection mode, one function per family of modes,
  shared or per-sample weights.
"""

from keras import ops

from ._coupled import coupled_tensor_product
from ._general import general_tensor_product
from .layout import broadcast_batch, check_last_dim, check_weights, flatten_batch
from .plan import TensorProductPlan

__all__ = ["tensor_product", "TensorProductPlan"]


def tensor_product(plan, x1, x2, weights=None, shared_weights=True):
    """Tensor product ``x1 ⊗ x2`` following ``plan``'s instructions.

    Args:
        plan: `TensorProductPlan`.
        x1: tensor ``(..., irreps_in1.dim)``.
        x2: tensor ``(..., irreps_in2.dim)``.
        weights: ``(weight_numel,)`` if ``shared_weights`` else ``(..., weight_numel)``
            broadcast against the batch; None when no instruction has weights.
        shared_weights: `bool`.

    Returns:
        Tensor ``(..., irreps_out.dim)``; the batch axes are broadcast.

    Example:
        >>> import numpy as np
        >>> plan = TensorProductPlan("1o", "1o", "0e", [(0, 0, 0, "uuu", False)])
        >>> x = np.array([[1.0, 2.0, 2.0]])
        >>> np.round(np.asarray(tensor_product(plan, x, x)), 6).tolist()  # |x|^2 / sqrt(3)
        [[5.196152]]
    """
    name = plan.name
    x1 = ops.convert_to_tensor(x1)
    x2 = ops.convert_to_tensor(x2, dtype=x1.dtype)
    check_last_dim(x1, plan.irreps_in1, name, "x1")
    check_last_dim(x2, plan.irreps_in2, name, "x2")
    if plan.weight_numel > 0:
        weights = check_weights(weights, plan.weight_numel, x1.dtype, name, "weights")
    if shared_weights or plan.weight_numel == 0:
        (x1, x2), batch = broadcast_batch([x1, x2])
        w = weights
    else:
        (x1, x2, weights), batch = broadcast_batch([x1, x2, weights])
        w = flatten_batch(weights)
    x1f, x2f = flatten_batch(x1), flatten_batch(x2)
    if plan.kernel == "coupled":
        out = coupled_tensor_product(plan.coupled_tables, x1f, x2f, w, shared_weights)
    else:
        out = general_tensor_product(plan, x1f, x2f, w, shared_weights)
    return ops.reshape(out, tuple(batch) + (plan.irreps_out.dim,))
