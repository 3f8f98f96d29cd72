"""Signals on the sphere sampled on a grid, and back (``keras.ops``).

Grid: ``res_beta`` polar angles with ``cos(beta)`` at the Gauss-Legendre nodes and
``res_alpha`` equally spaced azimuths; the point of angles ``(beta, alpha)`` is
``(sin b sin a, cos b, sin b cos a)`` (``y`` is the polar axis, as e3nn's spherical harmonics).
Quadrature: Gauss-Legendre weights times ``2 pi / res_alpha``; it integrates exactly every
polynomial of degree ``<= 2 res_beta - 1`` in ``cos(beta)`` and azimuthal frequency
``< res_alpha``. So for a band limit ``lmax``, ``from_s2grid(to_s2grid(x))`` returns ``x``
exactly when ``res_beta >= lmax + 1`` and ``res_alpha >= 2 lmax + 1``.

Coefficients use the ``"integral"`` normalisation (orthonormal harmonics on the sphere):
``f(x) = sum_l A_l . Y_l(x)`` and ``A_l = integral of f Y_l``.
"""

import functools

import numpy as np
from keras import ops

from ..o3 import Irreps
from .layout import check_last_dim

__all__ = ["s2_grid", "s2_grid_matrices", "to_s2grid", "from_s2grid", "spherical_harmonics_numpy"]


@functools.lru_cache(maxsize=32)
def s2_grid(res_beta, res_alpha):
    """``(points (res_beta, res_alpha, 3), quadrature weights (res_beta, res_alpha))``; weights sum to 4 pi.
    Cached: the arrays are read-only (copy them to modify)."""
    x, w = np.polynomial.legendre.leggauss(int(res_beta))
    beta = np.arccos(x[::-1])  # from the +y pole down
    w = w[::-1]
    alpha = np.arange(int(res_alpha)) * 2 * np.pi / res_alpha
    b, a = np.meshgrid(beta, alpha, indexing="ij")
    points = np.stack([np.sin(b) * np.sin(a), np.cos(b), np.sin(b) * np.cos(a)], axis=-1)
    weights = np.repeat(w[:, None], res_alpha, axis=1) * (2 * np.pi / res_alpha)
    return _frozen(points), _frozen(weights)


def _frozen(a):
    """Cached arrays are shared by every caller: read-only, so no caller can change another's."""
    a.setflags(write=False)
    return a


def spherical_harmonics_numpy(irreps, vectors, normalization="integral"):
    """Real spherical harmonics ``(..., irreps.dim)`` of unit-normalised ``vectors`` in numpy (float64):
    `kerase3.ops.spherical_harmonics`'s recursion on numpy arrays (no backend ops: plotting and peak
    search call it many times on small arrays). The zero vector has ``Y^0`` only."""
    from .spherical_harmonics import harmonic_components, sh_irreps

    v = np.asarray(vectors, np.float64)
    flat = v.reshape(-1, 3)
    r = np.linalg.norm(flat, axis=1, keepdims=True)
    u = np.where(r > 0, flat / np.where(r > 0, r, 1.0), 0.0)
    _, ls = sh_irreps(irreps)
    comps = harmonic_components(ls, [u[:, 0], u[:, 1], u[:, 2]], np.ones(len(u)), normalization)
    return np.stack(comps, axis=-1).reshape(v.shape[:-1] + (sum(2 * l + 1 for l in ls),))


@functools.lru_cache(maxsize=32)
def s2_grid_matrices(irreps, res_beta, res_alpha):
    """``(Y (n_points, dim), weighted Y (n_points, dim))`` for a grid: values = x @ Y.T and
    coefficients = values @ (w Y). Cached: the arrays are read-only."""
    points, weights = s2_grid(res_beta, res_alpha)
    irreps = Irreps(irreps)
    lmax = max(ir.l for _, ir in irreps)
    # values do not depend on the parities: the harmonics of degree l for every copy of l
    Y_all = spherical_harmonics_numpy(Irreps.spherical_harmonics(lmax), points.reshape(-1, 3))
    Y = np.concatenate([Y_all[:, ir.l**2:(ir.l + 1) ** 2] for mul, ir in irreps for _ in range(mul)], axis=1)
    return _frozen(Y), _frozen(Y * weights.reshape(-1, 1))


def _irreps_and_check(irreps, x, name):
    irreps = Irreps(irreps)
    check_last_dim(x, irreps, name, "coefficients")
    return irreps


def to_s2grid(coefficients, irreps, res_beta, res_alpha):
    """``(..., irreps.dim) -> (..., res_beta, res_alpha)``: the signal's values on the grid."""
    x = ops.convert_to_tensor(coefficients)
    irreps = _irreps_and_check(irreps, x, "to_s2grid")
    Y, _ = s2_grid_matrices(str(irreps), int(res_beta), int(res_alpha))
    values = ops.matmul(x, ops.convert_to_tensor(Y.T, dtype=x.dtype))
    return ops.reshape(values, tuple(ops.shape(x)[:-1]) + (int(res_beta), int(res_alpha)))


def from_s2grid(values, irreps, res_beta=None, res_alpha=None):
    """``(..., res_beta, res_alpha) -> (..., irreps.dim)``: the coefficients by quadrature."""
    v = ops.convert_to_tensor(values)
    res_beta = v.shape[-2] if res_beta is None else int(res_beta)
    res_alpha = v.shape[-1] if res_alpha is None else int(res_alpha)
    if tuple(v.shape[-2:]) != (res_beta, res_alpha):
        raise ValueError(f"from_s2grid: expected (..., {res_beta}, {res_alpha}). Received: shape={tuple(v.shape)}")
    irreps = Irreps(irreps)
    _, WY = s2_grid_matrices(str(irreps), res_beta, res_alpha)
    flat = ops.reshape(v, tuple(ops.shape(v)[:-2]) + (res_beta * res_alpha,))
    return ops.matmul(flat, ops.convert_to_tensor(WY, dtype=v.dtype))
