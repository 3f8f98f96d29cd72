"""Instruction lists of tensor products and linear maps: pure Python, built once per layer.

The normalisation constants follow e3nn 0.6 exactly (``irrep_normalization``,
``path_normalization``, ``in1_var/in2_var/out_var``); the flat weight vector is laid
out like e3nn's (instructions in order, each path's weights row-major), so e3nn
weights load as they are.
"""

import functools
import math
from typing import NamedTuple, Tuple

import numpy as np

from ..o3 import Irreps, wigner_3j
from ._coupled import CoupledTables, coupled_paths

__all__ = ["Instruction", "TensorProductPlan", "LinearPlan", "cg_terms", "MODES", "irrep_normalization_factor",
           "split_to_match"]

MODES = ("uvw", "uvu", "uvv", "uuw", "uuu", "uvuv", "uvu<v", "u<vw")


class Instruction(NamedTuple):
    i_in1: int
    i_in2: int
    i_out: int
    connection_mode: str
    has_weight: bool
    path_weight: float
    path_shape: Tuple[int, ...]


@functools.lru_cache(maxsize=None)
def cg_terms(l1, l2, l3):
    """Non-zeros ``(i, j, k, c)`` of ``wigner_3j(l1, l2, l3)``."""
    C = wigner_3j(l1, l2, l3)
    idx = np.argwhere(np.abs(C) > 1e-14)
    return tuple((int(i), int(j), int(k), float(C[i, j, k])) for i, j, k in idx)


def irrep_normalization_factor(irrep_normalization, ir1, ir2, ir_out):
    """e3nn's squared normalisation of a path ``ir1 x ir2 -> ir_out`` before path normalisation:
    ``2 l_out + 1`` (``"component"``), ``(2 l1 + 1)(2 l2 + 1)`` (``"norm"``) or 1 (``"none"``)."""
    return {"component": ir_out.dim, "norm": ir1.dim * ir2.dim, "none": 1}[irrep_normalization]


def split_to_match(irreps1, irreps2):
    """Split blocks of two irreps with the same number of copies wherever either side splits, so
    that block ``i`` of one pairs with block ``i`` of the other (e3nn's elementwise pairing).

    Returns two lists of ``(mul, ir)`` of equal length with equal multiplicities.

    Example:
        >>> split_to_match(Irreps("3x0e"), Irreps("1x1o + 2x0e"))
        ([(1, 0e), (2, 0e)], [(1, 1o), (2, 0e)])
    """
    l1 = [(mul, ir) for mul, ir in irreps1]
    l2 = [(mul, ir) for mul, ir in irreps2]
    i = 0
    while i < len(l1) and i < len(l2):
        (m1, ir1), (m2, ir2) = l1[i], l2[i]
        if m1 < m2:
            l2[i:i + 1] = [(m1, ir2), (m2 - m1, ir2)]
        elif m2 < m1:
            l1[i:i + 1] = [(m2, ir1), (m1 - m2, ir1)]
        i += 1
    return l1, l2


def _path_shape(mode, mul1, mul2, mul_out):
    return {
        "uvw": (mul1, mul2, mul_out),
        "uvu": (mul1, mul2),
        "uvv": (mul1, mul2),
        "uuw": (mul1, mul_out),
        "uuu": (mul1,),
        "uvuv": (mul1, mul2),
        "uvu<v": (mul1 * (mul2 - 1) // 2,),
        "u<vw": (mul1 * (mul2 - 1) // 2, mul_out),
    }[mode]


def _num_elements(mode, mul1, mul2):
    return {
        "uvw": mul1 * mul2,
        "uvu": mul2,
        "uvv": mul1,
        "uuw": mul1,
        "uuu": 1,
        "uvuv": 1,
        "uvu<v": 1,
        "u<vw": mul1 * (mul2 - 1) // 2,
    }[mode]


class TensorProductPlan:
    """Validated, normalised instructions of a tensor product.

    Args:
        irreps_in1, irreps_in2, irreps_out: irreps (strings or ``Irreps``).
        instructions: list of ``(i_in1, i_in2, i_out, mode, has_weight[, path_weight])``.
        irrep_normalization: ``"component"``, ``"norm"`` or ``"none"``.
        path_normalization: ``"element"``, ``"path"`` or ``"none"``.
        in1_var, in2_var, out_var: optional variances per block (e3nn's meaning).
        name: the layer name used in error messages.
        kernel: ``"auto"`` (default), ``"general"`` or ``"coupled"``. The plan picks its kernel when
            it is made: ``"coupled"`` (the convolution product with a hand-written gradient,
            `kerase3.ops._coupled`) when every path is a weighted ``uvu`` with a one-channel second
            input, else ``"general"`` (every mode, `kerase3.ops._general`). ``"general"`` forces the
            general kernel; ``"coupled"`` raises where it does not apply.

    Attributes:
        instructions: normalised `Instruction` list (e3nn's order).
        paths: ``(instruction, weight slice or None)`` of the paths that contribute (no empty blocks).
        weight_numel: `int`.
        kernel: ``"coupled"`` or ``"general"``.
        coupled_tables: the constant tables of the coupled kernel (None for the general one).
    """

    def __init__(
        self,
        irreps_in1,
        irreps_in2,
        irreps_out,
        instructions,
        irrep_normalization="component",
        path_normalization="element",
        in1_var=None,
        in2_var=None,
        out_var=None,
        name="TensorProduct",
        kernel="auto",
    ):
        self.name = name
        self.irreps_in1 = Irreps(irreps_in1)
        self.irreps_in2 = Irreps(irreps_in2)
        self.irreps_out = Irreps(irreps_out)
        if irrep_normalization not in ("component", "norm", "none"):
            raise ValueError(
                f"{name}: irrep_normalization must be 'component', 'norm' or 'none'. Received: irrep_normalization={irrep_normalization!r}"
            )
        if path_normalization not in ("element", "path", "none"):
            raise ValueError(
                f"{name}: path_normalization must be 'element', 'path' or 'none'. Received: path_normalization={path_normalization!r}"
            )
        raw = []
        for ins in instructions:
            ins = tuple(ins)
            if len(ins) not in (5, 6):
                raise ValueError(
                    f"{name}: an instruction is (i_in1, i_in2, i_out, mode, has_weight[, path_weight]). Received: {ins!r}"
                )
            raw.append(ins if len(ins) == 6 else ins + (1.0,))
        for ins in raw:
            self._check(ins)

        def var(v, irreps, label):
            if v is None:
                return [1.0] * len(irreps)
            v = [float(x) for x in v]
            if len(v) != len(irreps):
                raise ValueError(f"{name}: {label} needs one entry per block of {irreps}. Received: {label}={v}")
            return v

        in1_var = var(in1_var, self.irreps_in1, "in1_var")
        in2_var = var(in2_var, self.irreps_in2, "in2_var")
        out_var = var(out_var, self.irreps_out, "out_var")

        def mul(irreps, i):
            return irreps[i].mul

        out = []
        for i1, i2, io, mode, has_weight, path_weight in raw:
            m1, m2, mo = mul(self.irreps_in1, i1), mul(self.irreps_in2, i2), mul(self.irreps_out, io)
            ir1, ir2, iro = self.irreps_in1[i1].ir, self.irreps_in2[i2].ir, self.irreps_out[io].ir
            alpha = irrep_normalization_factor(irrep_normalization, ir1, ir2, iro)
            if path_normalization == "element":
                x = sum(
                    in1_var[j1] * in2_var[j2] * _num_elements(jm, mul(self.irreps_in1, j1), mul(self.irreps_in2, j2))
                    for j1, j2, jo, jm, _, _ in raw
                    if jo == io
                )
            elif path_normalization == "path":
                x = in1_var[i1] * in2_var[i2] * _num_elements(mode, m1, m2)
                x *= len([1 for r in raw if r[2] == io])
            else:
                x = 1
            if x > 0:
                alpha /= x
            alpha *= out_var[io] * path_weight
            out.append(Instruction(i1, i2, io, mode, bool(has_weight), math.sqrt(alpha), _path_shape(mode, m1, m2, mo)))
        self.instructions = out
        self.weight_numel = sum(int(np.prod(i.path_shape)) for i in out if i.has_weight)
        slices = {id(ins): s for ins, s in self.weight_slices()}
        self.paths = [(ins, slices.get(id(ins))) for ins in out if self._contributes(ins)]
        if kernel not in ("auto", "general", "coupled"):
            raise ValueError(f"{name}: kernel must be 'auto', 'general' or 'coupled'. Received: kernel={kernel!r}")
        coupled = None if kernel == "general" else coupled_paths(self)
        if kernel == "coupled" and coupled is None:
            raise ValueError(f"{name}: kernel='coupled' needs every path to be a weighted 'uvu' with a one-channel "
                             f"second input. Received: {self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out}")
        self.kernel = "general" if coupled is None else "coupled"
        self.coupled_tables = None if coupled is None else CoupledTables(self, coupled)

    def _contributes(self, ins):
        m1, m2, mo = self.irreps_in1[ins.i_in1].mul, self.irreps_in2[ins.i_in2].mul, self.irreps_out[ins.i_out].mul
        # u<v modes with one channel have no pairs
        return not (m1 == 0 or m2 == 0 or mo == 0 or ins.path_weight == 0 or 0 in ins.path_shape)

    def _check(self, ins):
        i1, i2, io, mode, has_weight, _ = ins
        name = self.name
        for idx, irreps, label in ((i1, self.irreps_in1, "irreps_in1"), (i2, self.irreps_in2, "irreps_in2"), (io, self.irreps_out, "irreps_out")):
            if not isinstance(idx, (int, np.integer)) or not 0 <= idx < len(irreps):
                raise ValueError(f"{name}: instruction {ins} indexes block {idx} of {label}={irreps}, which has {len(irreps)} blocks")
        if mode not in MODES:
            raise ValueError(f"{name}: instruction {ins} has an unknown mode {mode!r}; modes are {MODES}")
        (m1, ir1), (m2, ir2), (mo, iro) = self.irreps_in1[i1], self.irreps_in2[i2], self.irreps_out[io]
        if ir1.p * ir2.p != iro.p:
            raise ValueError(f"{name}: instruction {ins} violates parity: {ir1} x {ir2} cannot give {iro}")
        if not abs(ir1.l - ir2.l) <= iro.l <= ir1.l + ir2.l:
            raise ValueError(f"{name}: instruction {ins} violates the triangle rule: {ir1} x {ir2} cannot give {iro}")
        need = {
            "uvu": (mo == m1, "mul_out == mul_in1"),
            "uvv": (mo == m2, "mul_out == mul_in2"),
            "uuw": (m1 == m2 and (has_weight or mo == 1), "mul_in1 == mul_in2 (and mul_out == 1 without weights)"),
            "uuu": (m1 == m2 == mo, "mul_in1 == mul_in2 == mul_out"),
            "uvuv": (m1 * m2 == mo, "mul_out == mul_in1 * mul_in2"),
            "uvu<v": (m1 == m2 and m1 * (m1 - 1) // 2 == mo, "mul_in1 == mul_in2 and mul_out == mul*(mul-1)/2"),
            "u<vw": (m1 == m2 and has_weight, "mul_in1 == mul_in2 and has_weight"),
            "uvw": (bool(has_weight), "has_weight"),
        }[mode]
        if not need[0]:
            raise ValueError(
                f"{name}: instruction {ins} in mode {mode!r} needs {need[1]}. "
                f"Received: {m1}x{ir1} x {m2}x{ir2} -> {mo}x{iro}"
            )

    def weight_slices(self):
        """``(instruction, slice into the flat weights)`` for every weighted instruction."""
        out, i = [], 0
        for ins in self.instructions:
            if ins.has_weight:
                n = int(np.prod(ins.path_shape))
                out.append((ins, slice(i, i + n)))
                i += n
        return out


class LinearPlan:
    """Instructions ``(i_in, i_out)`` of an equivariant linear map, e3nn's normalisation."""

    def __init__(self, irreps_in, irreps_out, instructions=None, biases=False, path_normalization="element", name="Linear"):
        self.name = name
        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = Irreps(irreps_out)
        if path_normalization not in ("element", "path"):
            raise ValueError(f"{name}: path_normalization must be 'element' or 'path'. Received: {path_normalization!r}")
        if instructions is None:
            instructions = [
                (i_in, i_out)
                for i_in, (_, ir_in) in enumerate(self.irreps_in)
                for i_out, (_, ir_out) in enumerate(self.irreps_out)
                if ir_in == ir_out
            ]
        instructions = [tuple(i) for i in instructions]
        for ins in instructions:
            if len(ins) != 2:
                raise ValueError(f"{name}: an instruction is (i_in, i_out). Received: {ins!r}")
            i_in, i_out = ins
            if not 0 <= i_in < len(self.irreps_in) or not 0 <= i_out < len(self.irreps_out):
                raise ValueError(
                    f"{name}: instruction {ins} is out of range for {self.irreps_in} -> {self.irreps_out}"
                )
            if self.irreps_in[i_in].ir != self.irreps_out[i_out].ir:
                raise ValueError(
                    f"{name}: instruction {ins} connects different irreps "
                    f"{self.irreps_in[i_in].ir} and {self.irreps_out[i_out].ir}"
                )

        def alpha(i_in, i_out):
            x = sum(self.irreps_in[j_in if path_normalization == "element" else i_in].mul for j_in, j_out in instructions if j_out == i_out)
            return 1.0 if x == 0 else x

        self.instructions = [
            (i_in, i_out, (self.irreps_in[i_in].mul, self.irreps_out[i_out].mul), alpha(i_in, i_out) ** -0.5)
            for i_in, i_out in instructions
        ]
        if isinstance(biases, bool):
            biases = [biases and ir.is_scalar() for _, ir in self.irreps_out]
        biases = [bool(b) for b in biases]
        if len(biases) != len(self.irreps_out):
            raise ValueError(f"{name}: biases needs one entry per block of {self.irreps_out}. Received: biases={biases}")
        for b, (mul, ir) in zip(biases, self.irreps_out):
            if b and not ir.is_scalar():
                raise ValueError(f"{name}: biases are allowed on scalar (0e) outputs only. Received: a bias on {mul}x{ir}")
        self.biases = biases
        self.weight_numel = sum(a * b for _, _, (a, b), _ in self.instructions)
        self.bias_numel = sum(mul_ir.dim for b, mul_ir in zip(biases, self.irreps_out) if b)
