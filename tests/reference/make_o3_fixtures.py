"""Make the e3nn reference fixtures for kerase3.o3 and kerase3.ops.spherical_harmonics.

Run by hand in a separate environment (the test suite never imports torch):

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.13.0 e3nn==0.6.0 numpy
    /tmp/ref/bin/python tests/reference/make_o3_fixtures.py

Writes tests/reference/o3_e3nn.npz.
"""

import os

import numpy as np
import torch
import e3nn
from e3nn import o3

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(1234)
out = {"e3nn_version": np.array(e3nn.__version__), "torch_version": np.array(torch.__version__)}

# wigner_3j: every valid triple with l <= 4, and a spread of larger ones up to 12
triples = [(a, b, c) for a in range(5) for b in range(5) for c in range(abs(a - b), min(a + b, 4) + 1)]
triples += [(12, 12, 12), (12, 12, 0), (12, 1, 11), (11, 1, 12), (6, 6, 12), (7, 5, 9), (10, 4, 8), (9, 9, 2), (8, 3, 11), (5, 12, 10)]
for a, b, c in triples:
    out[f"w3j_{a}_{b}_{c}"] = o3.wigner_3j(a, b, c).numpy()

# spherical harmonics: random vectors (various lengths), the axes, the zero vector
vectors = rng.normal(size=(24, 3)) * rng.uniform(0.2, 3.0, size=(24, 1))
vectors = np.concatenate([vectors, np.eye(3), -np.eye(3), np.zeros((1, 3))], axis=0)
out["sh_vectors"] = vectors
x = torch.tensor(vectors)
for normalization in ["integral", "component", "norm"]:
    for normalize in [True, False]:
        out[f"sh_{normalization}_{int(normalize)}"] = o3.spherical_harmonics(
            list(range(13)), x, normalize=normalize, normalization=normalization
        ).numpy()
# a non-contiguous, repeated list of degrees and a pseudovector irreps
out["sh_list_3_1_3_0"] = o3.spherical_harmonics([3, 1, 3, 0], x, normalize=True, normalization="component").numpy()
out["sh_irreps_pseudo"] = o3.spherical_harmonics("0e+1e+2e", x, normalize=True, normalization="norm").numpy()

# wigner_D
angles = rng.uniform(-2 * np.pi, 2 * np.pi, size=(5, 3))
out["wd_angles"] = angles
a, b, c = (torch.tensor(angles[:, i]) for i in range(3))
for l in range(13):
    out[f"wd_{l}"] = o3.wigner_D(l, a, b, c).numpy()

# D_from_matrix on proper and improper rotations, and D_from_angles with parity
irreps = "2x0e + 0o + 1o + 1e + 2x2e + 2o + 3o + 4e + 7o"
out["dm_irreps"] = np.array(irreps)
R = o3.rand_matrix(6)
R[3:] = -R[3:]
out["dm_R"] = R.numpy()
out["dm_D"] = o3.Irreps(irreps).D_from_matrix(R).numpy()
out["dq_q"] = o3.rand_quaternion(4).numpy()
out["dq_D"] = o3.Irreps(irreps).D_from_quaternion(torch.tensor(out["dq_q"])).numpy()

# rotation conversions
out["rot_angles"] = angles
out["rot_matrix"] = o3.angles_to_matrix(a, b, c).numpy()
out["rot_quaternion"] = o3.angles_to_quaternion(a, b, c).numpy()
axis, angle = o3.angles_to_axis_angle(a, b, c)
out["rot_axis"], out["rot_axis_angle"] = axis.numpy(), angle.numpy()
xa, xb = o3.xyz_to_angles(torch.tensor(vectors[:24]))
out["rot_xyz_alpha"], out["rot_xyz_beta"] = xa.numpy(), xb.numpy()
out["so3_generators_3"] = o3.so3_generators(3).numpy()
out["su2_generators_2"] = o3.su2_generators(2).numpy()
out["change_basis_3"] = o3.change_basis_real_to_complex(3).numpy()

# Irreps algebra
strings = ["3x1o+2x0e+1x1o+0o+2e", "1e+1o+0e+0o+2x1e", "16x0e+8x1o+4x2e"]
for i, s in enumerate(strings):
    srt = o3.Irreps(s).sort()
    out[f"irreps_{i}"] = np.array(s)
    out[f"irreps_{i}_sorted"] = np.array(str(srt.irreps))
    out[f"irreps_{i}_p"] = np.array(srt.p)
    out[f"irreps_{i}_inv"] = np.array(srt.inv)
    out[f"irreps_{i}_regroup"] = np.array(str(o3.Irreps(s).regroup()))
    out[f"irreps_{i}_simplify"] = np.array(str(o3.Irreps(s).simplify()))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "o3_e3nn.npz")
np.savez_compressed(path, **out)
print(f"wrote {len(out)} arrays to {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
