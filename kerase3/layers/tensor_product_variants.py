"""e3nn's four ready-made tensor products: their instructions, on top of `TensorProduct`."""

import keras

from ..o3 import Irrep, Irreps
from ..ops.plan import irrep_normalization_factor, split_to_match
from .base import irreps_arg
from .tensor_product import TensorProduct


def _filter(filter_ir_out, layer):
    if filter_ir_out is None:
        return None
    try:
        return [Irrep(ir) for ir in filter_ir_out]
    except ValueError:
        raise ValueError(f"{layer}: filter_ir_out must be a list of irreps. Received: filter_ir_out={filter_ir_out!r}") from None


def _simplified_inputs(irreps_in1, irreps_in2, filter_ir_out, layer):
    i1 = irreps_arg(irreps_in1, layer, "irreps_in1").simplify()
    i2 = irreps_arg(irreps_in2, layer, "irreps_in2").simplify()
    return i1, i2, _filter(filter_ir_out, layer)


class _Variant(TensorProduct):
    """A `TensorProduct` whose instructions are made from its own arguments (``_keys``): its config
    is its parent's without the instruction list and with those arguments as given."""

    _keys = ()
    _parent_only = ("irreps_in1", "irreps_in2", "irreps_out", "instructions", "irrep_normalization", "path_normalization",
                    "in1_var", "in2_var", "out_var")

    def get_config(self):
        config = super().get_config()
        for k in self._parent_only:
            config.pop(k, None)
        config.update({k: getattr(self, "_arg_" + k) for k in self._keys})
        return config


@keras.saving.register_keras_serializable(package="kerase3")
class FullyConnectedTensorProduct(_Variant):
    """Every path ``(i1, i2) -> i_out`` allowed by the selection rules, mode ``uvw`` (e3nn's).

    Args:
        irreps_in1, irreps_in2, irreps_out: irreps.
        irrep_normalization, path_normalization: as in `TensorProduct`.

    Call arguments:
        x1 `(..., irreps_in1.dim)`, x2 `(..., irreps_in2.dim)`, optional weight.

    Output shape:
        `(..., irreps_out.dim)`.

    Example:
        >>> tp = FullyConnectedTensorProduct("2x0e + 1o", "1o", "3x1o + 1x0e")
        >>> tp.weight_numel, tuple(tp(np.ones((2, 5)), np.ones((2, 3))).shape)
        (7, (2, 10))
    """

    _keys = ("irreps_in1", "irreps_in2", "irreps_out", "irrep_normalization", "path_normalization")

    def __init__(self, irreps_in1, irreps_in2, irreps_out, irrep_normalization="component",
                 path_normalization="element", **kwargs):
        name = type(self).__name__
        i1, i2, io = (irreps_arg(x, name, n) for x, n in ((irreps_in1, "irreps_in1"), (irreps_in2, "irreps_in2"), (irreps_out, "irreps_out")))
        instr = [
            (a, b, c, "uvw", True)
            for a, (_, ir1) in enumerate(i1)
            for b, (_, ir2) in enumerate(i2)
            for c, (_, iro) in enumerate(io)
            if iro in ir1 * ir2
        ]
        super().__init__(i1, i2, io, instr, irrep_normalization=irrep_normalization,
                         path_normalization=path_normalization, **kwargs)
        self._arg_irreps_in1, self._arg_irreps_in2, self._arg_irreps_out = str(i1), str(i2), str(io)
        self._arg_irrep_normalization, self._arg_path_normalization = irrep_normalization, path_normalization


@keras.saving.register_keras_serializable(package="kerase3")
class ElementwiseTensorProduct(_Variant):
    """Product of the i-th irrep copy of ``x1`` with the i-th copy of ``x2`` (mode ``uuu``, no weights).

    Args:
        irreps_in1, irreps_in2: irreps with the same number of irrep copies.
        filter_ir_out: optional list of irreps to keep in the output.
        irrep_normalization: as in `TensorProduct`.

    Example:
        >>> str(ElementwiseTensorProduct("2x1o", "2x1o").irreps_out)
        '2x0e+2x1e+2x2e'
    """

    _keys = ("irreps_in1", "irreps_in2", "filter_ir_out", "irrep_normalization")

    def __init__(self, irreps_in1, irreps_in2, filter_ir_out=None, irrep_normalization="component", **kwargs):
        name = type(self).__name__
        i1, i2, filt = _simplified_inputs(irreps_in1, irreps_in2, filter_ir_out, name)
        if i1.num_irreps != i2.num_irreps:
            raise ValueError(
                f"{name}: irreps_in1 and irreps_in2 must have the same number of irrep copies. "
                f"Received: irreps_in1={i1} ({i1.num_irreps}), irreps_in2={i2} ({i2.num_irreps})"
            )
        l1, l2 = split_to_match(i1, i2)
        out, instr = [], []
        for i, ((mul, ir1), (_, ir2)) in enumerate(zip(l1, l2)):
            for ir in ir1 * ir2:
                if filt is not None and ir not in filt:
                    continue
                instr.append((i, i, len(out), "uuu", False))
                out.append((mul, ir))
        super().__init__(Irreps(l1), Irreps(l2), Irreps(out), instr, irrep_normalization=irrep_normalization, **kwargs)
        self._arg_irreps_in1, self._arg_irreps_in2 = str(irreps_in1), str(irreps_in2)
        self._arg_filter_ir_out = None if filt is None else [str(ir) for ir in filt]
        self._arg_irrep_normalization = irrep_normalization


@keras.saving.register_keras_serializable(package="kerase3")
class FullTensorProduct(_Variant):
    """All products of every irrep of ``x1`` with every irrep of ``x2`` (mode ``uvuv``), output sorted.

    Args:
        irreps_in1, irreps_in2: irreps.
        filter_ir_out: optional list of irreps to keep.
        irrep_normalization: as in `TensorProduct`.

    Example:
        >>> str(FullTensorProduct("2x0e", "1o + 1e").irreps_out)
        '2x1o+2x1e'
    """

    _keys = ("irreps_in1", "irreps_in2", "filter_ir_out", "irrep_normalization")

    def __init__(self, irreps_in1, irreps_in2, filter_ir_out=None, irrep_normalization="component", **kwargs):
        name = type(self).__name__
        i1, i2, filt = _simplified_inputs(irreps_in1, irreps_in2, filter_ir_out, name)
        out, instr = [], []
        for a, (m1, ir1) in enumerate(i1):
            for b, (m2, ir2) in enumerate(i2):
                for ir in ir1 * ir2:
                    if filt is not None and ir not in filt:
                        continue
                    instr.append((a, b, len(out), "uvuv", False))
                    out.append((m1 * m2, ir))
        out, p, _ = Irreps(out).sort()
        instr = [(a, b, p[c], m, w) for a, b, c, m, w in instr]
        super().__init__(i1, i2, out, instr, irrep_normalization=irrep_normalization, **kwargs)
        self._arg_irreps_in1, self._arg_irreps_in2 = str(irreps_in1), str(irreps_in2)
        self._arg_filter_ir_out = None if filt is None else [str(ir) for ir in filt]
        self._arg_irrep_normalization = irrep_normalization


def _alpha_diag(irrep_normalization, ir1, ir_out):
    if irrep_normalization == "component":
        return ir_out.dim / (ir1.dim + 2) if ir_out.l == 0 else ir_out.dim / 2
    if irrep_normalization == "norm":
        return ir_out.dim * ir1.dim if ir_out.l == 0 else ir1.dim * (ir1.dim + 2) / 2
    return 1


@keras.saving.register_keras_serializable(package="kerase3")
class TensorSquare(_Variant):
    """Tensor product of ``x`` with itself, each independent pair once (e3nn's ``TensorSquare``).

    Without ``irreps_out``: every product, no weights (modes ``uvuv``, ``uvu<v``, ``uuu``).
    With ``irreps_out``: fully connected with weights (``uvw``, ``u<vw``, ``uuw``).

    Call arguments:
        x: `(..., irreps_in.dim)`; optional weight.

    Example:
        >>> str(TensorSquare("1o").irreps_out), tuple(TensorSquare("1o")(np.ones((4, 3))).shape)
        ('1x0e+1x2e', (4, 6))
    """

    _keys = ("irreps_in", "irreps_out", "filter_ir_out", "irrep_normalization")

    def __init__(self, irreps_in, irreps_out=None, filter_ir_out=None, irrep_normalization="component", **kwargs):
        name = type(self).__name__
        if irrep_normalization not in ("component", "norm", "none"):
            raise ValueError(f"{name}: irrep_normalization must be 'component', 'norm' or 'none'. Received: {irrep_normalization!r}")
        ii = irreps_arg(irreps_in, name, "irreps_in").simplify()
        filt = _filter(filter_ir_out, name)
        instr = []
        if irreps_out is None:
            out = []
            for a, (m1, ir1) in enumerate(ii):
                for b, (m2, ir2) in enumerate(ii):
                    for ir in ir1 * ir2:
                        if filt is not None and ir not in filt:
                            continue
                        if a < b:
                            instr.append((a, b, len(out), "uvuv", False, irrep_normalization_factor(irrep_normalization, ir1, ir2, ir)))
                            out.append((m1 * m2, ir))
                        elif a == b:
                            if m1 > 1:
                                instr.append((a, a, len(out), "uvu<v", False, irrep_normalization_factor(irrep_normalization, ir1, ir2, ir)))
                                out.append((m1 * (m1 - 1) // 2, ir))
                            if ir.l % 2 == 0:
                                instr.append((a, a, len(out), "uuu", False, _alpha_diag(irrep_normalization, ir1, ir)))
                                out.append((m1, ir))
            io, p, _ = Irreps(out).sort()
            instr = [(x, y, p[z], m, w, al) for x, y, z, m, w, al in instr]
        else:
            if filt is not None:
                raise ValueError(f"{name}: give irreps_out or filter_ir_out, not both. Received: {irreps_out!r}, {filter_ir_out!r}")
            io = irreps_arg(irreps_out, name, "irreps_out").simplify()
            for a, (m1, ir1) in enumerate(ii):
                for b, (_, ir2) in enumerate(ii):
                    for c, (_, ir) in enumerate(io):
                        if ir not in ir1 * ir2:
                            continue
                        if a < b:
                            instr.append((a, b, c, "uvw", True, irrep_normalization_factor(irrep_normalization, ir1, ir2, ir)))
                        elif a == b:
                            if m1 > 1:
                                instr.append((a, a, c, "u<vw", True, irrep_normalization_factor(irrep_normalization, ir1, ir2, ir)))
                            if ir.l % 2 == 0:
                                instr.append((a, a, c, "uuw", True, _alpha_diag(irrep_normalization, ir1, ir)))
        super().__init__(ii, ii, io, instr, irrep_normalization="none", **kwargs)
        self._arg_irreps_in = str(irreps_in)
        self._arg_irreps_out = None if irreps_out is None else str(irreps_out)
        self._arg_filter_ir_out = None if filt is None else [str(ir) for ir in filt]
        self._arg_irrep_normalization = irrep_normalization

    def call(self, x, weight=None):
        return super().call(x, x, weight)

    def compute_output_shape(self, x_shape, weight_shape=None):
        return tuple(x_shape[:-1]) + (self.plan.irreps_out.dim,)

    def __repr__(self):
        return f"TensorSquare({self._arg_irreps_in} -> {self.plan.irreps_out} | {self.weight_numel} weights)"
