"""Geometric tensors as data: Cartesian tensors as irreps, geometry as signals on the sphere, and back.

1. The elasticity tensor C_ijkl (symmetries ij=ji, kl=lk, ijkl=klij) has 21 independent numbers:
   2x0e + 2x2e + 1x4e (the two bulk/shear-like scalars, two quadrupoles, one hexadecapole).
2. A symmetric 3x3 matrix drawn as its signal on the sphere (the seed's picture, in three lines).
3. Geometry -> signal -> geometry: a tetrahedron's directions become spherical-harmonic
   coefficients (`SphericalTensor.with_peaks_at`), and `find_peaks` recovers them.
4. A nonlinearity on the sphere (`S2Activation`): its equivariance error falls with the grid.

    python tutorials/03_geometric_tensors.py        # under a minute; figures in tutorials/out/03_geometric_tensors
"""

import os

import numpy as np
from keras import ops

from kerase3 import o3
from kerase3.io import CartesianTensor, SphericalTensor, plot_signal
from kerase3.layers import S2Activation
from kerase3.testing import equivariance_error

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "03_geometric_tensors")


def elasticity():
    ct = CartesianTensor("ijkl=jikl=klij")
    # count the independent entries directly: the rank of the symmetrisation map on 3^4 entries
    perms = [(0, 1, 2, 3), (1, 0, 2, 3), (0, 1, 3, 2), (1, 0, 3, 2), (2, 3, 0, 1), (3, 2, 0, 1), (2, 3, 1, 0), (3, 2, 1, 0)]
    basis = np.eye(81).reshape(81, 3, 3, 3, 3)
    sym = sum(np.transpose(basis, (0,) + tuple(1 + p for p in perm)) for perm in perms).reshape(81, 81)
    rank = np.linalg.matrix_rank(sym)
    print(f"1. elasticity tensor 'ijkl=jikl=klij': {ct.irreps} = {ct.dim} numbers (rank of the symmetriser: {rank})")
    # an isotropic material (Lame lambda, mu) has only the two scalars
    lam, mu = 1.2, 0.8
    d = np.eye(3)
    C = lam * np.einsum("ij,kl->ijkl", d, d) + mu * (np.einsum("ik,jl->ijkl", d, d) + np.einsum("il,jk->ijkl", d, d))
    x = np.asarray(ops.convert_to_numpy(ct.from_cartesian(C)))
    print(f"   isotropic C(lambda={lam}, mu={mu}) -> nonzero irreps: "
          + ", ".join(f"{mul}x{ir} ({np.linalg.norm(x[s]):.3f})" for (mul, ir), s in zip(ct.irreps, ct.irreps.slices()) if np.linalg.norm(x[s]) > 1e-12))
    return ct.dim


def matrix_picture():
    M = np.array([[1.0, 0.3, 0.0], [0.3, -0.5, 0.2], [0.0, 0.2, 0.2]])
    ct = CartesianTensor("ij=ji")
    path = plot_signal(ct.from_cartesian(M), ct.irreps, os.path.join(OUT, "symmetric_matrix.png"),
                       title="a symmetric matrix on the sphere")
    w, v = np.linalg.eigh(M)
    print(f"2. symmetric matrix -> {ct.irreps} -> {path}\n   (lobes along the eigenvectors; eigenvalues {np.round(w, 3).tolist()})")


def peaks():
    tetra = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    R = o3.rand_matrix(seed=0)
    dirs = tetra @ R.T
    st = SphericalTensor(4)
    c = st.with_peaks_at(dirs)
    plot_signal(c, st.irreps, os.path.join(OUT, "tetrahedron_signal.png"), title="with_peaks_at(tetrahedron)")
    found, values = st.find_peaks(c, min_value=0.5)
    err = max(np.min(np.linalg.norm(found - v, axis=1)) for v in dirs)
    print(f"3. tetrahedron -> {st.irreps} ({st.dim} numbers) -> find_peaks: {len(found)} peaks, values "
          f"{np.round(values, 6).tolist()}, largest direction error {err:.1e}")
    print(f"   norms per l of the signal: {np.round(np.asarray(st.norms(c)), 4).tolist()} (a tetrahedron has no l=1, l=2 part)")
    return err


def s2_activation():
    print("4. S2Activation('0e+1o+2e', silu): relative equivariance error vs grid (res_beta x res_alpha)")
    for res in (4, 8, 16, 32):
        layer = S2Activation("0e+1o+2e", "silu", res_beta=res, res_alpha=2 * res + 1, dtype="float64")
        err = equivariance_error(lambda x: layer(x), [layer.irreps_in], [layer.irreps_out], n_trials=3, seed=0, batch=16)
        rel = max(v for k, v in err.items() if k != "scale") / err["scale"]
        print(f"   {res:3d} x {2 * res + 1:3d}: {rel:.1e}")


def main():
    os.makedirs(OUT, exist_ok=True)
    dim = elasticity()
    matrix_picture()
    err = peaks()
    s2_activation()
    assert dim == 21 and err < 1e-5
    print(f"figures in {OUT}")


if __name__ == "__main__":
    main()
