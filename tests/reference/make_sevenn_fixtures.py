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


def main():
    from sevenn.calculator import SevenNetCalculator

    data = {}
    structs = structures()
    for name, atoms in structs.items():
        data[f"{name}/positions"] = atoms.positions
        data[f"{name}/numbers"] = atoms.numbers
        data[f"{name}/cell"] = atoms.cell.array
        data[f"{name}/pbc"] = atoms.pbc
    runs = [("7net-0", None), ("7net-l3i5", None), ("7net-mf-0", "PBE"), ("7net-mf-0", "R2SCAN")]
    for model, modal in runs:
        calc = SevenNetCalculator(model, device="cpu", modal=modal) if modal else SevenNetCalculator(model, device="cpu")
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
