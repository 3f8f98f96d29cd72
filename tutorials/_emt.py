"""Training data for the tutorials: frames of Langevin dynamics labelled by ASE's EMT calculator."""

import numpy as np
from ase import units
from ase.calculators.emt import EMT
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution


def emt_trajectory(atoms, temperature, n_frames, rng, steps=5, friction=0.02, fixcm=True, deform=None, stress=False):
    """``n_frames`` copies of ``atoms`` along a Langevin trajectory at ``temperature`` (K), ``steps``
    steps of 2 fs apart, each with its own EMT calculator and its energy (and ``stress``) computed.

    Args:
        atoms: ASE ``Atoms`` (changed: it carries the dynamics).
        rng: a numpy ``Generator`` (or a seed) for the velocities and the thermostat.
        deform: optional ``f(i) -> factor``: frame ``i``'s cell scaled by it (the stress varies).
    """
    rng = np.random.default_rng(rng)
    atoms.calc = EMT()
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dyn = Langevin(atoms, 2 * units.fs, temperature_K=temperature, friction=friction, rng=rng, fixcm=fixcm)
    frames = []
    for i in range(n_frames):
        dyn.run(steps)
        frame = atoms.copy()
        if deform is not None:
            frame.set_cell(frame.get_cell() * deform(i), scale_atoms=True)
        frame.calc = EMT()
        frame.get_potential_energy()
        if stress:
            frame.get_stress()
        frames.append(frame)
    return frames
