"""LAMMPS set-ups shared by the tests of the ``fix external`` driver, ``pair_style kerase3`` and the
pretrained potentials: a box read from ASE atoms, and forces read back from a dump."""

import os

import numpy as np


def lammps_with(atoms, folder, elements, cutoff, commands=""):
    """LAMMPS (Python module) with ``atoms`` read from ``folder/box.data`` (types in ``elements``'
    order), ``pair_style zero`` (the driver computes the forces) and ``commands`` after that."""
    from ase.io import write

    from kerase3.io.lammps import make_lammps

    write(os.path.join(folder, "box.data"), atoms, format="lammps-data", masses=True, specorder=elements,
          atom_style="atomic")
    lmp = make_lammps()
    lmp.commands_string(f"""
        units metal
        atom_style atomic
        boundary p p p
        atom_modify map array sort 0 0.0
        read_data {os.path.join(folder, 'box.data')}
        pair_style zero {cutoff}
        pair_coeff * *
        thermo_style custom step pe ke etotal press pxx pyy pzz pxy pxz pyz vol
        {commands}
    """)
    return lmp


def dumped_forces(path, n):
    """Forces ``(n, 3)`` by atom id from a ``dump custom ... id fx fy fz`` file's first frame."""
    with open(path) as f:
        lines = f.read().splitlines()
    rows = np.array([[float(w) for w in line.split()] for line in lines[9:9 + n]])
    return rows[np.argsort(rows[:, 0]), 1:]
