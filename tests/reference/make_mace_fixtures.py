"""Fixtures from mace-torch for kerase3's MACE: symmetric contractions and whole ScaleShiftMACE
models (weights as numpy state_dicts, constructor arguments, energies, forces and stress of
molecules and triclinic periodic cells), float64.

Run in a separate venv (kerase3 never imports torch):

    python -m venv /tmp/venv-mace && /tmp/venv-mace/bin/pip install torch==2.13.0 mace-torch cuequivariance
    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 /tmp/venv-mace/bin/python tests/reference/make_mace_fixtures.py

(mace-torch 0.3.16 pulls e3nn 0.4.4, whose constants need the environment variable under
torch 2.13.) Writes ``tests/reference/mace_torch.npz``: a flat dict; ``meta`` holds the JSON of
every case (its keys, configs and structures).
"""

import json
import os

import ase
import ase.build
import numpy as np
import torch
from e3nn import o3

import mace
from mace.calculators import MACECalculator
from mace.modules import interaction_classes
from mace.modules.models import ScaleShiftMACE
from mace.modules.symmetric_contraction import SymmetricContraction

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mace_torch.npz")
arrays, meta = {}, {"mace_version": mace.__version__, "contractions": [], "models": []}


def put(key, value):
    arrays[key] = np.asarray(value)
    return key


def contraction_case(name, irreps_in, irreps_out, correlation, num_elements, seed, reduced=False):
    torch.manual_seed(seed)
    sc = SymmetricContraction(o3.Irreps(irreps_in), o3.Irreps(irreps_out), correlation, num_elements=num_elements,
                              use_reduced_cg=reduced)
    with torch.no_grad():
        for p in sc.parameters():
            p.normal_()  # mace initialises with 1/num_params: larger weights test more
    rng = np.random.default_rng(seed)
    n = 7
    x = rng.normal(size=(n, o3.Irreps(irreps_in).dim))
    species = rng.integers(0, num_elements, size=n)
    y = np.eye(num_elements)[species]
    # mace's input layout: [n, channels, sum of irrep dims] (reshape_irreps of the mul_ir features)
    ir = o3.Irreps(irreps_in)
    blocks, i = [], 0
    for mul, r in ir:
        blocks.append(torch.tensor(x[:, i : i + mul * r.dim]).reshape(n, mul, r.dim))
        i += mul * r.dim
    out = sc(torch.cat(blocks, dim=-1), torch.tensor(y)).detach().numpy()
    case = dict(name=name, irreps_in=irreps_in, irreps_out=irreps_out, correlation=correlation,
                num_elements=num_elements, use_reduced_cg=reduced, x=put(f"{name}/x", x), y=put(f"{name}/y", y), out=put(f"{name}/out", out),
                state={k: put(f"{name}/state/{k}", v.detach().numpy()) for k, v in sc.state_dict().items()})
    meta["contractions"].append(case)


def structures(species, seed):
    rng = np.random.default_rng(seed)
    a, b = species[0], species[-1]
    mol = ase.Atoms([a, b, b, a, b], positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0], [2.0, 1.5, 0.7], [2.6, 2.1, 1.2]])
    mol.positions += rng.normal(scale=0.05, size=mol.positions.shape)
    cell = np.array([[3.6, 0.0, 0.0], [0.9, 3.4, 0.0], [0.5, 0.7, 3.8]])  # triclinic
    bulk = ase.Atoms([a, b, a, b], cell=cell, pbc=True,
                     scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0.1, 0.55, 0.45]])
    bulk.positions += rng.normal(scale=0.05, size=bulk.positions.shape)
    return [("molecule", mol), ("periodic", bulk)]


def model_case(name, config, seed):
    torch.manual_seed(seed)
    kw = dict(config)
    kw["interaction_cls"] = interaction_classes[kw.pop("interaction")]
    kw["interaction_cls_first"] = interaction_classes[kw.pop("interaction_first", config["interaction"])]
    kw["hidden_irreps"] = o3.Irreps(kw["hidden_irreps"])
    kw["MLP_irreps"] = o3.Irreps(kw["MLP_irreps"])
    kw["gate"] = {"silu": torch.nn.functional.silu, None: None}[kw["gate"]]
    kw["atomic_energies"] = np.asarray(kw["atomic_energies"])
    kw["num_elements"] = len(kw["atomic_numbers"])
    model = ScaleShiftMACE(**kw)
    with torch.no_grad():  # random weights everywhere (mace zero-initialises some)
        for pname, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(torch.randn_like(p) * (0.3 if "symmetric_contractions" in pname else 1.0))
    model.eval()
    calc = MACECalculator(models=model, device="cpu", default_dtype="float64")
    case = dict(name=name, config=config, state={k: put(f"{name}/state/{k}", v.detach().numpy())
                                                   for k, v in model.state_dict().items()}, structures=[])
    for sname, atoms in structures(config["atomic_numbers"], seed):
        atoms.calc = calc
        rec = dict(name=sname, numbers=atoms.numbers.tolist(), positions=put(f"{name}/{sname}/positions", atoms.positions),
                   pbc=bool(atoms.pbc.any()), cell=put(f"{name}/{sname}/cell", atoms.cell.array),
                   energy=float(atoms.get_potential_energy()), forces=put(f"{name}/{sname}/forces", atoms.get_forces()))
        if rec["pbc"]:
            rec["stress"] = put(f"{name}/{sname}/stress", atoms.get_stress(voigt=False))
        case["structures"].append(rec)
    meta["models"].append(case)


contraction_case("sc_l2_nu3", "3x0e+3x1o+3x2e", "3x0e+3x1o+3x2e", 3, 2, 0)
contraction_case("sc_l2_nu3_odd", "2x0e+2x1o+2x2e", "2x0e+2x1e+2x2o", 3, 3, 1)
contraction_case("sc_l3_nu3", "2x0e+2x1o+2x2e+2x3o", "2x0e+2x1o", 3, 1, 2)
contraction_case("sc_l1_nu4", "2x0e+2x1o", "2x0e+2x1o", 4, 2, 3)
# cuEquivariance's reduced coupling tensors (use_reduced_cg=True; needs `pip install cuequivariance`)
from mace.tools.cg import CUET_AVAILABLE  # noqa: E402

assert CUET_AVAILABLE, "pip install cuequivariance: the reduced coupling tensors need it"
contraction_case("sc_l2_nu3_reduced", "3x0e+3x1o+3x2e", "3x0e+3x1o+3x2e", 3, 2, 4, reduced=True)
contraction_case("sc_l3_nu3_reduced", "2x0e+2x1o+2x2e+2x3o", "2x0e+2x1o", 3, 1, 5, reduced=True)

base = dict(r_max=4.0, num_bessel=6, num_polynomial_cutoff=5, max_ell=2, num_interactions=2,
            hidden_irreps="8x0e+8x1o", MLP_irreps="4x0e", correlation=3, radial_MLP=[16, 16],
            use_reduced_cg=False, avg_num_neighbors=3.5, atomic_numbers=[1, 8], atomic_energies=[-13.6, -2041.8],
            atomic_inter_scale=1.7, atomic_inter_shift=0.3, interaction="RealAgnosticResidualInteractionBlock", gate="silu")
model_case("mace_small", base, 10)
model_case("mace_l3_three_layers", dict(base, max_ell=3, num_interactions=3, hidden_irreps="6x0e+6x1o+6x2e",
                                        correlation=2, atomic_numbers=[13, 29], atomic_energies=[-1.2, -3.4],
                                        r_max=3.5, num_bessel=8, num_polynomial_cutoff=6), 11)
model_case("mace_scalar_hidden", dict(base, hidden_irreps="8x0e", correlation=2, num_interactions=2), 12)
model_case("mace_first_plain", dict(base, interaction_first="RealAgnosticInteractionBlock"), 13)
# odd scalars in the hidden irreps: every parity inside, convolution paths with l1 + l2 + l3 odd
model_case("mace_odd_hidden", dict(base, hidden_irreps="4x0e+4x0o+4x1o+4x1e", correlation=2), 14)
model_case("mace_reduced_cg", dict(base, use_reduced_cg=True, max_ell=3), 15)

np.savez_compressed(OUT, meta=json.dumps(meta), **arrays)
print(f"wrote {OUT}: {len(meta['contractions'])} contractions, {len(meta['models'])} models")
