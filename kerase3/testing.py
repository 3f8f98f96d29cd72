"""Equivariance checks for functions, layers and models (public: test your own models).

>>> from kerase3 import ops, testing
>>> testing.assert_equivariant(lambda v: ops.spherical_harmonics(4, v), ["cartesian_points"], ["0e+1o+2e+3o+4e"],
...                            do_translation=False)  # doctest: +SKIP

Inputs and outputs are described by a list with one entry each:

- irreps (``"8x0e + 4x1o"`` or ``Irreps``): the last axis transforms with ``D(g)``;
- ``"cartesian_points"``: positions ``(..., 3)``, rotated, inverted and translated;
- ``"cartesian_vectors"``: ``(..., 3)`` rotated and inverted like ``1o``, never translated;
- ``None``: left alone (integers, masks, cells of a fixed frame...).

Every check draws a random rotation ``R``, composes it with inversion (``-R``) when
``do_parity``, adds a random translation to ``cartesian_points`` when
``do_translation``, optionally permutes nodes, and compares ``f(g x)`` with ``g f(x)``.
"""

import itertools

import numpy as np
from keras import ops

from .o3 import Irrep, Irreps, rand_matrix

__all__ = ["equivariance_error", "assert_equivariant", "random_irreps", "default_tolerance"]

_POINTS = "cartesian_points"
_VECTORS = "cartesian_vectors"
_INDICES = "indices"


def default_tolerance(dtype):
    """``(atol, rtol)`` for a dtype name: float64 1e-10, float32 5e-5, 16-bit 5e-2."""
    dtype = str(dtype)
    if "64" in dtype:
        return 1e-10, 1e-10
    if "16" in dtype:
        return 5e-2, 5e-2
    return 5e-5, 5e-5


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _parse_spec(spec, where):
    out = []
    for s in spec:
        if s is None or s in (_POINTS, _VECTORS):
            out.append(s)
        else:
            try:
                out.append(Irreps(s))
            except ValueError as e:
                raise ValueError(
                    f"equivariance_error: {where} entries must be irreps, 'cartesian_points', 'cartesian_vectors' "
                    f"or None. Received: {s!r}"
                ) from e
    return out


def _transform(x, spec, R, k, t):
    """Apply the group element (R proper, inversion**k, translation t) to a numpy array."""
    if spec is None:
        return x
    x = np.asarray(x, dtype=np.float64)
    if spec in (_POINTS, _VECTORS):
        if x.shape[-1] != 3:
            raise ValueError(f"equivariance_error: {spec} must have a last axis of size 3. Received: shape={x.shape}")
        y = (-1) ** k * x @ R.T
        return y + t if spec == _POINTS else y
    if spec.dim == 1 and (x.ndim == 0 or x.shape[-1] != 1):
        # one scalar irrep (0e or 0o) may come without a feature axis
        return x * float(spec[0].ir.p) ** k
    if x.ndim == 0 or x.shape[-1] != spec.dim:
        raise ValueError(
            f"equivariance_error: an argument described by irreps {spec} must have a last axis of size {spec.dim}. "
            f"Received: shape={x.shape}"
        )
    D = spec.D_from_matrix((-1) ** k * R)
    return x @ D.T


def _permute(x, how, perm, inv):
    if how is None:
        return x
    x = np.asarray(x)
    if how == _INDICES:
        return inv[x]
    return np.take(x, perm, axis=how)


def _random_input(spec, batch, rng):
    if spec is None:
        raise ValueError("equivariance_error: args_in must be given when an input is described by None")
    if spec in (_POINTS, _VECTORS):
        return rng.standard_normal((batch, 3))
    return spec.randn(batch, -1, seed=rng)


def equivariance_error(
    fn,
    irreps_in,
    irreps_out,
    args_in=None,
    *,
    n_trials=1,
    do_parity=True,
    do_translation=True,
    permute_in=None,
    permute_out=None,
    dtype="float64",
    batch=4,
    seed=None,
):
    """Largest deviation from equivariance of ``fn`` over random group elements.

    Args:
        fn: callable taking one tensor per input and returning a tensor or a tuple/list.
        irreps_in: one description per input (see the module docstring); a single entry
            may be given without a list.
        irreps_out: one description per output.
        args_in: list of arrays; drawn at random (``batch`` rows) when None.
        n_trials: `int`, number of random rotations.
        do_parity: `bool`, also test rotation composed with inversion.
        do_translation: `bool`, also translate ``cartesian_points`` inputs (and outputs).
        permute_in: None, or one entry per input: None (no node axis), an `int` axis along
            which nodes are permuted, or ``"indices"`` (the values are node indices, e.g.
            senders/receivers, and are relabelled).
        permute_out: one entry per output: None (invariant under node permutations) or
            the node axis.
        dtype: dtype of the floating inputs given to ``fn``.
        seed: `int` or numpy ``Generator``.

    Returns:
        dict mapping ``(parity_k, translated, permuted)`` to the largest absolute error
        over all outputs and trials, and the key ``"scale"`` to the largest output magnitude.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    spec_in = _parse_spec(_as_list(irreps_in), "irreps_in")
    spec_out = _parse_spec(_as_list(irreps_out), "irreps_out")
    if args_in is None:
        args_in = [_random_input(s, batch, rng) for s in spec_in]
    args_in = [np.asarray(a) for a in _as_list(args_in)]
    if len(args_in) != len(spec_in):
        raise ValueError(
            f"equivariance_error: got {len(args_in)} inputs but {len(spec_in)} descriptions. Received: irreps_in={irreps_in!r}"
        )
    if permute_in is not None:
        permute_in = _as_list(permute_in)
        permute_out = _as_list(permute_out) if permute_out is not None else [None] * len(spec_out)
        if len(permute_in) != len(spec_in) or len(permute_out) != len(spec_out):
            raise ValueError(
                "equivariance_error: permute_in/permute_out need one entry per input/output. "
                f"Received: permute_in={permute_in!r}, permute_out={permute_out!r}"
            )
        axes = [(a, p) for a, p in zip(args_in, permute_in) if isinstance(p, int)]
        if not axes:
            raise ValueError(f"equivariance_error: permute_in names no node axis. Received: permute_in={permute_in!r}")
        n_nodes = axes[0][0].shape[axes[0][1]]

    def call(args):
        tensors = [
            ops.convert_to_tensor(a, dtype=dtype) if s is not None else ops.convert_to_tensor(a)
            for a, s in zip(args, spec_in)
        ]
        out = fn(*tensors)
        out = [np.asarray(ops.convert_to_numpy(o), dtype=np.float64) for o in _as_list(out)]
        if len(out) != len(spec_out):
            raise ValueError(
                f"equivariance_error: fn returned {len(out)} outputs but irreps_out describes {len(spec_out)}. "
                f"Received: irreps_out={irreps_out!r}"
            )
        return out

    def cast(a, s):
        return a if s is None else np.asarray(ops.convert_to_numpy(ops.convert_to_tensor(a, dtype=dtype)), np.float64)

    args_in = [cast(a, s) for a, s in zip(args_in, spec_in)]
    out_ref = call(args_in)
    errors = {"scale": max([float(np.abs(o).max()) for o in out_ref if o.size] + [0.0])}
    parities = (0, 1) if do_parity else (0,)
    translations = (False, True) if do_translation and _POINTS in spec_in else (False,)
    permutations = (False, True) if permute_in is not None else (False,)
    for _ in range(n_trials):
        R = rand_matrix(seed=rng)
        t = rng.standard_normal(3)
        for k, tr, pm in itertools.product(parities, translations, permutations):
            tt = t if tr else np.zeros(3)
            new_in = [_transform(a, s, R, k, tt) for a, s in zip(args_in, spec_in)]
            expected = [_transform(o, s, R, k, tt) for o, s in zip(out_ref, spec_out)]
            if pm:
                perm = rng.permutation(n_nodes)
                inv = np.argsort(perm)
                new_in = [_permute(a, p, perm, inv) for a, p in zip(new_in, permute_in)]
                expected = [_permute(o, p, perm, inv) for o, p in zip(expected, permute_out)]
            got = call(new_in)
            err = max([float(np.abs(g - e).max()) for g, e in zip(got, expected) if g.size] + [0.0])
            key = (k, tr, pm)
            errors[key] = max(errors.get(key, 0.0), err)
    return errors


def assert_equivariant(fn, irreps_in, irreps_out, args_in=None, *, atol=None, rtol=None, **kwargs):
    """Raise ``AssertionError`` unless ``fn`` is equivariant within tolerance.

    The tolerance is ``atol + rtol * (largest output magnitude)``, by default from the
    dtype (:func:`default_tolerance`). Keyword arguments go to :func:`equivariance_error`.

    Returns:
        The dict of :func:`equivariance_error`.
    """
    d_atol, d_rtol = default_tolerance(kwargs.get("dtype", "float64"))
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    errors = equivariance_error(fn, irreps_in, irreps_out, args_in, **kwargs)
    tol = atol + rtol * errors["scale"]
    bad = {k: v for k, v in errors.items() if k != "scale" and not v <= tol}
    if bad:
        lines = ", ".join(
            f"{'rotation+inversion' if k else 'rotation'}{' +translation' if tr else ''}{' +permutation' if pm else ''}: {v:.3e}"
            for (k, tr, pm), v in bad.items()
        )
        raise AssertionError(
            f"not equivariant within {tol:.1e} (atol={atol}, rtol={rtol}, output scale {errors['scale']:.3g}): {lines}. "
            f"irreps_in={irreps_in!r}, irreps_out={irreps_out!r}"
        )
    return errors


def random_irreps(n=None, *, lmax=4, mul_min=0, mul_max=5, len_min=0, len_max=4, clean=False, allow_empty=True, seed=None):
    """Random ``Irreps`` (or a list of ``n`` of them) for property tests.

    Args:
        lmax: `int`, largest degree.
        mul_min, mul_max: multiplicity range (inclusive).
        len_min, len_max: number of blocks range (inclusive).
        clean: `bool`, return ``regroup()``-ed irreps (sorted, merged, no zero multiplicity).
        allow_empty: `bool`, whether an irreps of dimension 0 may be returned.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def one():
        for _ in range(1000):
            items = [
                (int(rng.integers(mul_min, mul_max + 1)), Irrep(int(rng.integers(0, lmax + 1)), int(rng.choice([-1, 1]))))
                for _ in range(int(rng.integers(len_min, len_max + 1)))
            ]
            irreps = Irreps(items)
            if clean:
                irreps = irreps.regroup()
            if allow_empty or irreps.dim > 0:
                return irreps
        raise ValueError(
            f"random_irreps: could not draw non-empty irreps. Received: mul_max={mul_max}, len_max={len_max}"
        )

    return one() if n is None else [one() for _ in range(n)]
