"""Irreducible representations of O(3) and their direct sums.

``Irrep(l, p)``: degree ``l >= 0`` (dimension ``2l+1``) and parity ``p = +1`` ("e",
even) or ``-1`` ("o", odd). ``Irreps``: a tuple of ``(mul, ir)`` pairs, written
``"16x0e + 8x1o + 2x2e"``. Features are laid out in this order, each block
``[mul, 2l+1]`` flattened ("mul_ir" layout), exactly like e3nn.

>>> Irreps("16x0e + 8x1o").dim
40
>>> str(Irreps("2x1y + 0e"))
'2x1o+1x0e'
"""

import collections
import itertools
import re

import numpy as np

from . import _rotation
from ._wigner import wigner_D

__all__ = ["Irrep", "MulIr", "Irreps"]

_IRREP_RE = re.compile(r"^\s*(\d+)\s*([eoy])\s*$")
_MUL_IR_RE = re.compile(r"^\s*(?:(\d+)\s*x\s*)?(\d+\s*[eoy])\s*$")


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _block_diag(blocks):
    """Batched block-diagonal matrix from blocks ``(..., d_i, d_i)`` with a common batch shape."""
    if not blocks:
        return np.zeros((0, 0))
    batch = np.broadcast_shapes(*(b.shape[:-2] for b in blocks))
    dim = sum(b.shape[-1] for b in blocks)
    out = np.zeros(batch + (dim, dim), dtype=np.result_type(*blocks))
    i = 0
    for b in blocks:
        d = b.shape[-1]
        out[..., i : i + d, i : i + d] = b
        i += d
    return out


def _parity_exponent(R):
    """``(R_proper, k)`` with ``R = (-1)^k R_proper`` for orthogonal ``R``."""
    R = _rotation._check_rotation(R, "D_from_matrix")
    d = np.sign(np.linalg.det(R)) if R.size else np.ones(R.shape[:-2])
    return d[..., None, None] * R, (1 - d) / 2


class _Representation:
    """What `Irrep` and `Irreps` share: equality with strings, and D for every rotation format."""

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = type(self)(other)
            except ValueError:
                return False
        return tuple.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    __hash__ = tuple.__hash__

    def D_from_quaternion(self, q, k=None):
        return self.D_from_angles(*_rotation.quaternion_to_angles(q), k)

    def D_from_matrix(self, R):
        """Representation of orthogonal matrices ``(..., 3, 3)``; ``det R = -1`` is a rotation
        composed with inversion, represented through the parity."""
        R, k = _parity_exponent(R)
        return self.D_from_angles(*_rotation.matrix_to_angles(R), k)

    def D_from_axis_angle(self, axis, angle):
        return self.D_from_angles(*_rotation.axis_angle_to_angles(axis, angle))


class Irrep(_Representation, tuple):
    """An irreducible representation of O(3).

    Args:
        l: `int` degree >= 0, or a string ``"1o"``, ``"2e"``, ``"1y"`` (``y``: parity
            ``(-1)^l``, the parity of spherical harmonics), or an ``Irrep`` or ``(l, p)``.
        p: `int`, the parity, +1 or -1 (omit when ``l`` is a string).

    >>> Irrep("1y") == Irrep(1, -1)
    True
    """

    def __new__(cls, l, p=None):
        if p is None:
            if isinstance(l, Irrep):
                return l
            if isinstance(l, str):
                m = _IRREP_RE.match(l)
                if m is None:
                    raise ValueError(f'Irrep: unable to parse "{l}" (expected e.g. "0e", "1o", "2y"). Received: {l!r}')
                l = int(m.group(1))
                p = {"e": 1, "o": -1, "y": (-1) ** l}[m.group(2)]
            elif isinstance(l, (tuple, list)) and len(l) == 2:
                l, p = l
            else:
                raise ValueError(f"Irrep: expected a string, an Irrep or (l, p). Received: {l!r}")
        if not _is_int(l) or l < 0:
            raise ValueError(f"Irrep: l must be a non-negative integer. Received: l={l!r}")
        if not _is_int(p) or p not in (-1, 1):
            raise ValueError(f"Irrep: parity p must be +1 or -1. Received: p={p!r}")
        return super().__new__(cls, (int(l), int(p)))

    @property
    def l(self):  # noqa: E743
        return self[0]

    @property
    def p(self):
        return self[1]

    @property
    def dim(self):
        return 2 * self.l + 1

    def is_scalar(self):
        """True for ``0e``."""
        return self.l == 0 and self.p == 1

    def __repr__(self):
        return f"{self.l}{'e' if self.p == 1 else 'o'}"

    __str__ = __repr__

    def __getnewargs__(self):
        return (self.l, self.p)

    @classmethod
    def iterator(cls, lmax=None):
        """All irreps ``0e, 0o, 1o, 1e, 2e, 2o, ...`` up to ``lmax`` (forever if None)."""
        for l in itertools.count():
            yield Irrep(l, (-1) ** l)
            yield Irrep(l, -((-1) ** l))
            if l == lmax:
                break

    def __mul__(self, other):
        """Irreps in the tensor product: ``Irrep("1o") * Irrep("1o")`` yields 0e, 1e, 2e."""
        if _is_int(other):
            return Irreps([(int(other), self)])
        other = Irrep(other)
        p = self.p * other.p
        return (Irrep(l, p) for l in range(abs(self.l - other.l), self.l + other.l + 1))

    def __rmul__(self, other):
        if not _is_int(other):
            raise ValueError(f"Irrep: can only be multiplied on the left by an integer multiplicity. Received: {other!r}")
        return Irreps([(int(other), self)])

    def __add__(self, other):
        return Irreps(self) + Irreps(other)

    def __radd__(self, other):
        return Irreps(other) + Irreps(self)

    def D_from_angles(self, alpha, beta, gamma, k=None):
        """Representation matrix ``(..., dim, dim)`` of rotation (Y-X-Y angles) times inversion**k."""
        alpha, beta, gamma = (np.asarray(a, dtype=np.float64) for a in (alpha, beta, gamma))
        k = np.zeros_like(alpha) if k is None else np.asarray(k, dtype=np.float64)
        alpha, beta, gamma, k = np.broadcast_arrays(alpha, beta, gamma, k)
        return wigner_D(self.l, alpha, beta, gamma) * (float(self.p) ** k)[..., None, None]


    # an Irrep is not a container: keep tuple's sequence methods from misleading
    def count(self, value):
        raise TypeError("Irrep is not a sequence; use Irreps.count")

    def index(self, value):
        raise TypeError("Irrep is not a sequence; use Irreps.index")


class MulIr(tuple):
    """``(mul, ir)``: ``mul`` copies of the irrep ``ir``."""

    def __new__(cls, mul, ir=None):
        if ir is None:
            mul, ir = mul
        if not _is_int(mul) or mul < 0:
            raise ValueError(f"MulIr: multiplicity must be a non-negative integer. Received: mul={mul!r}")
        return super().__new__(cls, (int(mul), Irrep(ir)))

    def __getnewargs__(self):
        return (self.mul, self.ir)

    @property
    def mul(self):
        return self[0]

    @property
    def ir(self):
        return self[1]

    @property
    def dim(self):
        return self.mul * self.ir.dim

    def __repr__(self):
        return f"{self.mul}x{self.ir}"

    __str__ = __repr__


def _parse(irreps):
    out = []
    if irreps.strip() == "":
        return out
    for term in irreps.split("+"):
        m = _MUL_IR_RE.match(term)
        if m is None:
            raise ValueError(
                f'Irreps: unable to parse "{term.strip()}" in "{irreps}" '
                f'(expected terms like "16x0e", "2x1o" or "1y"). Received: irreps={irreps!r}'
            )
        mul = 1 if m.group(1) is None else int(m.group(1))
        out.append(MulIr(mul, Irrep(m.group(2).replace(" ", ""))))
    return out


class Irreps(_Representation, tuple):
    """Direct sum of irreps, e.g. ``Irreps("16x0e + 8x1o + 2x2e")``.

    Args:
        irreps: a string, an ``Irrep``, an ``Irreps``, or an iterable of ``(mul, ir)``
            pairs / irreps / strings. ``None`` or ``""`` give the empty irreps.

    Iteration yields ``(mul, ir)``. Two irreps compare equal to each other and to
    strings describing them.
    """

    def __new__(cls, irreps=None):
        if isinstance(irreps, Irreps):
            return super().__new__(cls, irreps)
        if irreps is None:
            out = []
        elif isinstance(irreps, Irrep):
            out = [MulIr(1, irreps)]
        elif isinstance(irreps, MulIr):
            out = [irreps]
        elif isinstance(irreps, str):
            out = _parse(irreps)
        else:
            try:
                items = list(irreps)
            except TypeError:
                raise ValueError(f"Irreps: expected a string or a list of (mul, ir). Received: {irreps!r}") from None
            out = []
            for item in items:
                if isinstance(item, MulIr):
                    out.append(item)
                elif isinstance(item, (str, Irrep)):
                    out.append(MulIr(1, Irrep(item)))
                elif isinstance(item, tuple) and len(item) == 2 and _is_int(item[0]) and not _is_int(item[1]):
                    out.append(MulIr(item[0], Irrep(item[1])))
                else:
                    raise ValueError(f"Irreps: unable to interpret {item!r} as (mul, ir). Received: irreps={irreps!r}")
        return super().__new__(cls, out)

    def __getnewargs__(self):
        return (tuple(self),)

    # -- constructors ------------------------------------------------------------------------------

    @staticmethod
    def spherical_harmonics(lmax, p=-1):
        """``1x0e + 1x1o + 1x2e + ...`` up to ``lmax`` (``p=-1``), or all even (``p=1``)."""
        if p not in (-1, 1):
            raise ValueError(f"Irreps.spherical_harmonics: p must be +1 or -1. Received: p={p!r}")
        return Irreps([(1, (l, p**l)) for l in range(lmax + 1)])

    # -- sizes -------------------------------------------------------------------------------------

    @property
    def dim(self):
        return sum(mul * ir.dim for mul, ir in self)

    @property
    def num_irreps(self):
        return sum(mul for mul, _ in self)

    @property
    def ls(self):
        """Degree of every copy: ``Irreps("2x0e+1o").ls == [0, 0, 1]``."""
        return [ir.l for mul, ir in self for _ in range(mul)]

    @property
    def lmax(self):
        if len(self) == 0:
            raise ValueError("Irreps.lmax: the irreps are empty. Received: irreps=''")
        return max(ir.l for _, ir in self)

    def slices(self):
        """One ``slice`` into the feature axis per ``(mul, ir)`` block."""
        out, i = [], 0
        for mul_ir in self:
            out.append(slice(i, i + mul_ir.dim))
            i += mul_ir.dim
        return out

    def is_scalar(self):
        return all(ir.is_scalar() for _, ir in self)

    # -- container protocol --------------------------------------------------------------------------

    def __getitem__(self, i):
        x = super().__getitem__(i)
        return Irreps(x) if isinstance(i, slice) else x

    def __contains__(self, ir):
        try:
            ir = Irrep(ir)
        except ValueError:
            return False
        return any(ir == irrep for _, irrep in self)

    def count(self, ir):
        """Total multiplicity of ``ir``."""
        ir = Irrep(ir)
        return sum(mul for mul, irrep in self if irrep == ir)

    def index(self, item):
        """Position of the first block equal to ``item`` (an irrep or a ``(mul, ir)`` pair)."""
        if isinstance(item, tuple) and len(item) == 2 and _is_int(item[0]):
            target = MulIr(item[0], item[1])
            match = lambda mul_ir: mul_ir == target  # noqa: E731
        else:
            ir = Irrep(item)
            match = lambda mul_ir: mul_ir.ir == ir  # noqa: E731
        for i, mul_ir in enumerate(self):
            if match(mul_ir):
                return i
        raise ValueError(f"Irreps.index: {item} is not in {self}. Received: item={item!r}")

    def __repr__(self):
        return "+".join(str(mul_ir) for mul_ir in self)

    __str__ = __repr__

    # -- algebra -------------------------------------------------------------------------------------

    def __add__(self, other):
        return Irreps(tuple(self) + tuple(Irreps(other)))

    def __radd__(self, other):
        return Irreps(other) + self

    def __mul__(self, other):
        """``irreps * n`` repeats the list (like e3nn); ``irreps1 * irreps2`` is the full
        tensor product's output irreps, sorted and simplified."""
        if _is_int(other):
            return Irreps(tuple.__mul__(self, int(other)))
        other = Irreps(other)
        out = [(mul1 * mul2, ir) for mul1, ir1 in self for mul2, ir2 in other for ir in ir1 * ir2]
        return Irreps(out).regroup()

    def __rmul__(self, other):
        if _is_int(other):
            return self * other
        return Irreps(other) * self

    def simplify(self):
        """Merge neighbouring blocks of the same irrep and drop zero multiplicities."""
        out = []
        for mul, ir in self:
            if out and out[-1][1] == ir:
                out[-1] = (out[-1][0] + mul, ir)
            elif mul > 0:
                out.append((mul, ir))
        return Irreps(out)

    def remove_zero_multiplicities(self):
        return Irreps([(mul, ir) for mul, ir in self if mul > 0])

    def sort(self):
        """Sort by irrep; returns ``(irreps, p, inv)`` like e3nn: ``inv[i]`` is the old index of
        the new block ``i`` and ``p[i]`` the new index of the old block ``i``."""
        order = sorted(range(len(self)), key=lambda i: (self[i].ir, i))
        inv = tuple(order)
        p = tuple(inv.index(i) for i in range(len(self)))
        Ret = collections.namedtuple("sort", ["irreps", "p", "inv"])
        return Ret(Irreps([self[i] for i in inv]), p, inv)

    def regroup(self):
        """``sort().irreps.simplify()``."""
        return self.sort().irreps.simplify()

    def filter(self, keep=None, *, drop=None, lmax=None):
        """Keep the blocks whose irrep is in ``keep`` (or not in ``drop``) and ``l <= lmax``.

        ``keep`` / ``drop`` may be irreps, a list of irreps (strings accepted) or a predicate
        on ``(mul, ir)``.
        """
        if keep is not None and drop is not None:
            raise ValueError(f"Irreps.filter: give keep or drop, not both. Received: keep={keep!r}, drop={drop!r}")

        def as_predicate(sel):
            if callable(sel) and not isinstance(sel, (Irreps, Irrep, str)):
                return sel
            if isinstance(sel, (str, Irrep, MulIr)):
                sel = Irreps(sel)
            irs = {Irrep(x.ir if isinstance(x, MulIr) else x) for x in sel}
            return lambda mul_ir: mul_ir.ir in irs

        out = list(self)
        if keep is not None:
            pred = as_predicate(keep)
            out = [m for m in out if pred(m)]
        if drop is not None:
            pred = as_predicate(drop)
            out = [m for m in out if not pred(m)]
        if lmax is not None:
            out = [m for m in out if m.ir.l <= lmax]
        return Irreps(out)

    @property
    def slice_by_mul(self):
        """``irreps.slice_by_mul[a:b]``: the irreps of copies ``a..b-1`` (counting every copy)."""
        return _MulSlicer(self)

    # -- random features and representations ---------------------------------------------------------

    def randn(self, *size, normalization="component", seed=None, dtype=np.float64):
        """Random features; ``size`` holds one ``-1`` where the feature axis goes.

        ``normalization="component"``: i.i.d. N(0, 1) components; ``"norm"``: every irrep copy
        has norm 1.
        """
        if size.count(-1) != 1:
            raise ValueError(f"Irreps.randn: size must contain exactly one -1 (the feature axis). Received: size={size}")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        di = size.index(-1)
        lsize, rsize = size[:di], size[di + 1 :]
        if normalization == "component":
            return rng.standard_normal(lsize + (self.dim,) + rsize).astype(dtype)
        if normalization == "norm":
            parts = []
            for mul, ir in self:
                r = rng.standard_normal(lsize + (mul, ir.dim) + rsize)
                r /= np.linalg.norm(r, axis=di + 1, keepdims=True)
                parts.append(r.reshape(lsize + (mul * ir.dim,) + rsize))
            return np.concatenate(parts, axis=di).astype(dtype) if parts else np.zeros(lsize + (0,) + rsize, dtype)
        raise ValueError(f"Irreps.randn: normalization must be 'component' or 'norm'. Received: normalization={normalization!r}")

    def D_from_angles(self, alpha, beta, gamma, k=None):
        """Block-diagonal representation ``(..., dim, dim)`` of rotation (Y-X-Y) times inversion**k."""
        alpha, beta, gamma = (np.asarray(a, dtype=np.float64) for a in (alpha, beta, gamma))
        k = np.zeros_like(alpha) if k is None else np.asarray(k, dtype=np.float64)
        batch = np.broadcast_shapes(alpha.shape, beta.shape, gamma.shape, k.shape)
        blocks = []
        cache = {}
        for mul, ir in self:
            if ir not in cache:
                cache[ir] = np.broadcast_to(ir.D_from_angles(alpha, beta, gamma, k), batch + (ir.dim, ir.dim))
            blocks.extend([cache[ir]] * mul)
        if not blocks:
            return np.zeros(batch + (0, 0))
        return _block_diag(blocks)



class _MulSlicer:
    def __init__(self, irreps):
        self.irreps = irreps

    def __getitem__(self, index):
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise ValueError(f"Irreps.slice_by_mul: only slices with step 1 are supported. Received: {index!r}")
        start, stop, _ = index.indices(self.irreps.num_irreps)
        out, i = [], 0
        for mul, ir in self.irreps:
            lo, hi = max(start, i), min(stop, i + mul)
            if hi > lo:
                out.append((hi - lo, ir))
            i += mul
        return Irreps(out)
