"""A tour of kerase3's O(3) floor: irreps, Clebsch-Gordan coefficients, Wigner D,
spherical harmonics and the equivariance check. Runs in seconds.

    python tutorials/00_o3_tour.py
"""

import numpy as np

from kerase3 import o3
from kerase3.ops import spherical_harmonics
from kerase3.testing import assert_equivariant

np.set_printoptions(precision=4, suppress=True)

# 1. Irreps: a feature made of 16 scalars, 8 vectors and 2 rank-2 spherical tensors
irreps = o3.Irreps("16x0e + 8x1o + 2x2e")
print(f"irreps {irreps}: dim={irreps.dim}, num_irreps={irreps.num_irreps}, lmax={irreps.lmax}")
print("1o x 1o ->", o3.Irreps("1o") * o3.Irreps("1o"), "(scalar, pseudovector, symmetric traceless)")

# 2. Representation matrices: a rotation R and its improper partner -R (R composed with inversion)
R = o3.rand_matrix(seed=0)
D = o3.Irreps("0e + 1o + 1e").D_from_matrix(-R)
print("D(-R) for 0e+1o+1e is block-diagonal; the 1o block is -R, the 1e block is R:",
      np.allclose(D[1:4, 1:4], -R), np.allclose(D[4:7, 4:7], R))

# 3. Clebsch-Gordan coefficients: the cross product is the (1, 1) -> 1 coupling
C = o3.wigner_3j(1, 1, 1)
a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
print("wigner_3j(1,1,1) contracted with x and y:", np.einsum("ijk,i,j->k", C, a, b), "∝ x × y =", np.cross(a, b))

# 4. Spherical harmonics of a vector, e3nn's values; equivariant up to any degree
v = np.array([[0.0, 0.0, 1.0]])
print("Y^0..2 of z (component normalisation):", np.asarray(spherical_harmonics([0, 1, 2], v))[0])
ls = list(range(21))
errors = assert_equivariant(lambda x: spherical_harmonics(ls, x), ["cartesian_vectors"],
                            [o3.Irreps.spherical_harmonics(20)], n_trials=2, seed=0)
worst = max(e for k, e in errors.items() if k != "scale")
print(f"spherical harmonics l<=20: worst equivariance error under rotations and inversion = {worst:.1e}")
