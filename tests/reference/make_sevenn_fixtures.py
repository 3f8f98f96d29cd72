"""sevenn's own energies, forces and stress of the pretrained SevenNet potentials -> sevenn_reference.npz.

Run in a venv with torch and sevenn (not needed by the suite):

    python -m venv /tmp/venv-7net
    /tmp/venv-7net/bin/pip install torch==2.13.0 sevenn==0.13.0 ase
    /tmp/venv-7net/bin/python tests/reference/make_sevenn_fixtures.py

Structures: molecules, bulk crystals (orthorhombic and triclinic, rattled), a slab with mixed
periodicity and an adsorbate, a 12-element rattled alloy and an isolated atom. The checkpoints are
read from the installed sevenn wheel; nothing of them is written here.
"""

import os

import numpy as np
from ase import Atoms
from ase.build import bulk, fcc111, molecule

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sevenn_reference.npz")


def structures():
    rng = np.random.default_rng(7)
    out = {}
    out["water"] = molecule("H2O")
    out["methane"] = molecule("CH4")
    out["benzene"] = molecule("C6H6")
    cu = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    cu.rattle(0.05, seed=1)
    out["cu_bulk"] = cu
    nacl = bulk("NaCl", "rocksalt", a=5.64) * (2, 2, 2)
    nacl.rattle(0.04, seed=2)
    out["nacl_primitive"] = nacl
    si = bulk("Si", "diamond", a=5.43) * (2, 1, 1)
    cell = si.cell.array.copy()
    cell[2] += [0.4, -0.3, 0.0]  # triclinic
    si.set_cell(cell, scale_atoms=True)
    si.rattle(0.05, seed=3)
    out["si_triclinic"] = si
    slab = fcc111("Pt", size=(2, 2, 3), vacuum=6.0)
    co = molecule("CO")
    co.translate(slab.positions[-1] + [0.0, 0.0, 1.9] - co.positions[1])
    slab += co
    slab.pbc = (True, True, False)
    out["pt_slab_co"] = slab
    zs = [3, 8, 13, 14, 22, 26, 28, 29, 40, 42, 74, 79]
    hea = bulk("Cu", "fcc", a=3.9, cubic=True) * (2, 2, 1)
    hea.set_atomic_numbers(rng.permutation(np.resize(zs, len(hea))))
    hea.rattle(0.08, seed=4)
    out["alloy_12_elements"] = hea
    out["isolated_fe"] = Atoms("Fe", positions=[[0.0, 0.0, 0.0]])
    return out


SYNTHETIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sevenn_synthetic.pth")


def make_synthetic_checkpoint():
    """A small SevenNet of random weights on the options the pretrained ones do not use (parity,
    irreps inferred from channel and lmax, NequIP's species self-connections, biases in the linear
    layers, the polynomial envelope, one hidden radial layer, a denominator per
    block), built by sevenn's own model builder and saved as its trainer saves checkpoints."""
    import torch
    from sevenn.checkpoint import SevenNetCheckpoint
    from sevenn.model_build import build_E3_equivariant_model
    from sevenn.util import pretrained_name_to_path

    import sevenn

    cfg = dict(SevenNetCheckpoint(pretrained_name_to_path("7net-0")).config)
    # written by this sevenn: its convolution weights by path sorted by output (0.11 on), not in
    # the order of the pretrained checkpoints (0.9)
    cfg.update(version=sevenn.__version__, channel=8, lmax=2, irreps_manual=False, is_parity=True, num_convolution_layer=3,
               weight_nn_hidden_neurons=[16], self_connection_type="nequip", use_bias_in_linear=True,
               cutoff=4.0, cutoff_function={"cutoff_function_name": "poly_cut", "poly_cut_p_value": 5},
               radial_basis={"radial_basis_name": "bessel", "bessel_basis_num": 6},
               act_gate={"e": "silu", "o": "tanh"}, act_scalar={"e": "silu", "o": "tanh"}, conv_denominator=[4.5, 5.0, 5.5], train_denominator=False)
    torch.manual_seed(3)
    model = build_E3_equivariant_model(cfg)
    state = model.state_dict()
    for key, value in state.items():  # e3nn starts biases at zero: make every weight count
        if key.endswith(".bias") and value.numel():
            state[key] = torch.randn_like(value) * 0.3
        if key.endswith("rescale_atomic_energy.shift"):
            state[key] = torch.randn_like(value)
        if key.endswith("rescale_atomic_energy.scale"):
            state[key] = 1.0 + torch.rand_like(value)
    model.load_state_dict(state)
    torch.save({"model_state_dict": model.state_dict(), "config": cfg, "epoch": 0}, SYNTHETIC)
    return SYNTHETIC


def main():
    from sevenn.calculator import SevenNetCalculator

    data = {}
    structs = structures()
    for name, atoms in structs.items():
        data[f"{name}/positions"] = atoms.positions
        data[f"{name}/numbers"] = atoms.numbers
        data[f"{name}/cell"] = atoms.cell.array
        data[f"{name}/pbc"] = atoms.pbc
    runs = [("7net-0", None), ("7net-l3i5", None), ("7net-mf-0", "PBE"), ("7net-mf-0", "R2SCAN"), ("synthetic", None)]
    for model, modal in runs:
        path = make_synthetic_checkpoint() if model == "synthetic" else model
        calc = SevenNetCalculator(path, device="cpu", modal=modal) if modal else SevenNetCalculator(path, device="cpu")
        tag = model + (f"@{modal}" if modal else "")
        for name, atoms in structs.items():
            atoms = atoms.copy()
            atoms.calc = calc
            data[f"{tag}/{name}/energy"] = atoms.get_potential_energy()
            data[f"{tag}/{name}/forces"] = atoms.get_forces()
            if atoms.pbc.all():
                data[f"{tag}/{name}/stress"] = atoms.get_stress(voigt=False)
            print(tag, name, data[f"{tag}/{name}/energy"])
    data["names"] = np.array(list(structs))
    data["runs"] = np.array([m + (f"@{x}" if x else "") for m, x in runs])
    np.savez_compressed(OUT, **data)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
