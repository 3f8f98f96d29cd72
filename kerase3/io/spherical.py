"""Signals on the sphere: geometry -> spherical-harmonic coefficients -> geometry.

A `SphericalTensor` describes the coefficients ``A_l`` (``l = 0..lmax``) of a function on the
sphere ``f(x) = sum_l A_l . Y_l(x)`` (harmonics normalised to 1 on the sphere, e3nn's
``"integral"`` normalisation). Under parity ``(P f)(x) = p_val f(p_arg x)``, so ``A_l`` is the
irrep ``(l, p_val * p_arg**l)``: the default ``p_val=1, p_arg=-1`` is ``0e + 1o + 2e + ...``,
the signals that point clouds make.
"""

import numpy as np
from keras import ops

from ..o3 import Irreps
from ..ops.s2grid import from_s2grid, s2_grid, spherical_harmonics_numpy, to_s2grid

__all__ = ["SphericalTensor"]


class SphericalTensor:
    """Coefficients of signals on the sphere, with e3nn's methods.

    Args:
        lmax: `int`, band limit.
        p_val, p_arg: parities (see the module docstring).

    Attributes:
        irreps: `Irreps` ``1x(0, p_val) + 1x(1, p_val p_arg) + ...``.
    """

    def __init__(self, lmax, p_val=1, p_arg=-1):
        if int(lmax) < 0 or p_val not in (1, -1) or p_arg not in (1, -1):
            raise ValueError(f"SphericalTensor: lmax >= 0 and parities +-1 expected. Received: lmax={lmax}, "
                             f"p_val={p_val}, p_arg={p_arg}")
        self.lmax, self.p_val, self.p_arg = int(lmax), int(p_val), int(p_arg)
        self.irreps = Irreps([(1, (l, p_val * p_arg**l)) for l in range(self.lmax + 1)])
        self._sh = Irreps.spherical_harmonics(self.lmax)  # same values, whatever the parities

    @property
    def dim(self):
        return self.irreps.dim

    def __repr__(self):
        return f"SphericalTensor(lmax={self.lmax}, p_val={self.p_val}, p_arg={self.p_arg}: {self.irreps})"

    # -- geometry -> signal -----------------------------------------------------------------------------------

    def with_peaks_at(self, vectors, values=None, center=None):
        """Coefficients of the smoothest band-limited signal with the value ``values[i]`` (default:
        ``|vectors[i]|``) at the direction of each vector (least squares in the span of
        ``Y(v_i)``). With ``center``, ``vectors`` are points of a cloud seen from it. Needs
        ``p_val = 1, p_arg = -1``; zero vectors and zero values are skipped."""
        if (self.p_val, self.p_arg) != (1, -1):
            raise ValueError(f"SphericalTensor.with_peaks_at: needs p_val=1, p_arg=-1. Received: {self!r}")
        vectors = np.asarray(vectors, np.float64).reshape(-1, 3)
        if center is not None:
            vectors = vectors - np.asarray(center, np.float64).reshape(1, 3)
        values = np.linalg.norm(vectors, axis=1) if values is None else np.asarray(values, np.float64).reshape(-1)
        if len(values) != len(vectors):
            raise ValueError(f"SphericalTensor.with_peaks_at: {len(vectors)} vectors but {len(values)} values")
        keep = (values != 0) & (np.linalg.norm(vectors, axis=1) > 0)
        vectors, values = vectors[keep], values[keep]
        if len(vectors) == 0:
            return np.zeros(self.dim)
        Y = spherical_harmonics_numpy(self._sh, vectors)
        A = Y @ Y.T
        solution, *_ = np.linalg.lstsq(A, values, rcond=None)
        return solution @ Y

    def sum_of_diracs(self, positions, values, center=None):
        """Coefficients of ``sum_i values[i] delta(x - x_i / |x_i|)`` cut at ``lmax`` (e3nn's scaling
        ``4 pi / (lmax + 1)**2``, so a single Dirac peaks near its value); ``center`` is subtracted
        from the positions first."""
        positions = np.asarray(positions, np.float64)
        if center is not None:
            positions = positions - np.asarray(center, np.float64)
        values = np.broadcast_to(np.asarray(values, np.float64), positions.shape[:-1])
        if positions.size == 0:
            return np.zeros(positions.shape[:-2] + (self.dim,))
        Y = spherical_harmonics_numpy(self._sh, positions)
        return 4 * np.pi / (self.lmax + 1) ** 2 * np.sum(Y * values[..., None], axis=-2)

    # -- signal -> values ---------------------------------------------------------------------------------------

    def signal_xyz(self, coefficients, points):
        """Values ``(..., n)`` of the signals ``(..., dim)`` at the directions of ``points (n, 3)``."""
        x = ops.convert_to_tensor(coefficients)
        Y = spherical_harmonics_numpy(self._sh, points)
        return ops.matmul(x, ops.convert_to_tensor(Y.T, dtype=x.dtype))

    def grid(self, res_beta, res_alpha):
        """The grid's points ``(res_beta, res_alpha, 3)`` and weights (see `kerase3.ops.s2grid`)."""
        return s2_grid(int(res_beta), int(res_alpha))

    def to_grid(self, coefficients, res_beta=None, res_alpha=None):
        """Values on the grid ``(..., res_beta, res_alpha)``; default resolution resolves the band limit."""
        res_beta = res_beta or 2 * (self.lmax + 1)
        res_alpha = res_alpha or 2 * res_beta
        return to_s2grid(coefficients, self.irreps, res_beta, res_alpha)

    def from_grid(self, values):
        """Coefficients from grid values ``(..., res_beta, res_alpha)`` (exact for band-limited signals)."""
        return from_s2grid(values, self.irreps)

    def norms(self, coefficients):
        """``(..., lmax + 1)``: the norm of each ``A_l``."""
        x = ops.convert_to_tensor(coefficients)
        return ops.stack([ops.sqrt(ops.sum(ops.square(x[..., l * l:(l + 1) ** 2]), axis=-1)) for l in range(self.lmax + 1)], axis=-1)

    def rotate(self, coefficients, R):
        """Coefficients of the signal rotated by ``R`` (proper or improper): ``f'(x) = f(R^-1 x)``
        (times ``p_val`` for improper ``R``)."""
        D = self.irreps.D_from_matrix(np.asarray(R, np.float64))
        x = ops.convert_to_tensor(coefficients)
        return ops.matmul(x, ops.convert_to_tensor(D.T, dtype=x.dtype))

    def _refine_peaks(self, x, points, values, step):
        """Pattern search: each point moves to the best of a 5x5 patch of its tangent plane; the
        patch shrinks when the point stays."""
        offsets = np.array([(a, b) for a in (-1, -0.5, 0, 0.5, 1) for b in (-1, -0.5, 0, 0.5, 1)])
        pts, vals = points.copy(), values.copy()
        h = np.full(len(pts), step)
        for _ in range(80):
            helper = np.where(np.abs(pts[:, 1:2]) < 0.9, [[0.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]])
            e1 = np.cross(pts, helper)
            e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
            e2 = np.cross(pts, e1)
            trial = pts[:, None] + h[:, None, None] * (offsets[None, :, :1] * e1[:, None] + offsets[None, :, 1:] * e2[:, None])
            trial /= np.linalg.norm(trial, axis=-1, keepdims=True)
            f = spherical_harmonics_numpy(self._sh, trial.reshape(-1, 3)).reshape(len(pts), len(offsets), -1) @ x
            best = np.argmax(f, axis=1)
            moved = f[np.arange(len(pts)), best] > vals
            pts = np.where(moved[:, None], trial[np.arange(len(pts)), best], pts)
            vals = np.where(moved, f[np.arange(len(pts)), best], vals)
            h = np.where(moved, h, h / 2)
            if h.max() < 1e-9:
                break
        return pts, vals

    # -- signal -> geometry -------------------------------------------------------------------------------------

    def find_peaks(self, coefficients, res=60, min_value=None, refine=True):
        """Directions (unit vectors ``(k, 3)``) and values ``(k,)`` of the local maxima of one signal.

        Local maxima on a ``(res, 2 res)`` grid (neighbours in both angles, azimuth periodic; the
        grid rows nearest the poles also compare across them), refined by a local maximisation on
        the sphere; peaks closer than the grid spacing are merged.

        Args:
            coefficients: ``(dim,)``.
            res: grid resolution in the polar angle.
            min_value: drop peaks below this value (default: ``-inf``).
            refine: climb from each grid peak to the maximum (pattern search on the sphere, all
                peaks at once, step halved down to 1e-9 rad).
        """
        x = np.asarray(ops.convert_to_numpy(ops.convert_to_tensor(coefficients)), np.float64).reshape(-1)
        if x.shape != (self.dim,):
            raise ValueError(f"SphericalTensor.find_peaks: expected coefficients of shape ({self.dim},). Received: {x.shape}")
        points, _ = s2_grid(int(res), 2 * int(res))
        Y = spherical_harmonics_numpy(self._sh, points.reshape(-1, 3))
        f = (Y @ x).reshape(points.shape[:2])
        padded = np.pad(f, ((1, 1), (0, 0)), constant_values=-np.inf)
        # across a pole: the row beyond is the same row rotated by half a turn
        half = f.shape[1] // 2
        padded[0] = np.roll(f[0], half)
        padded[-1] = np.roll(f[-1], half)
        center = padded[1:-1]
        is_peak = np.ones_like(f, bool)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if di or dj:
                    nb = np.roll(padded[1 + di:padded.shape[0] - 1 + di], -dj, axis=1)
                    is_peak &= center >= nb
        cand = points[is_peak]
        vals = f[is_peak]

        if refine and len(cand):
            cand, vals = self._refine_peaks(x, cand, vals, np.pi / res)
        out_v, out_f = [], []
        spacing = np.pi / res
        for v, fv in sorted(zip(cand, vals), key=lambda t: -t[1]):
            if min_value is not None and fv < min_value:
                continue
            if any(np.arccos(np.clip(np.dot(v, u), -1, 1)) < 1.5 * spacing for u in out_v):
                continue
            out_v.append(v)
            out_f.append(fv)
        return np.array(out_v).reshape(-1, 3), np.array(out_f)
