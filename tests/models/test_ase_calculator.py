import keras
import numpy as np
import pytest

ase = pytest.importorskip("ase")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the calculator test runs on tensorflow")


def test_calculator_energy_forces_stress_and_md():
    from ase.build import bulk
    from ase.md.verlet import VelocityVerlet
    from ase import units

    from kerase3.io.ase import Calculator
    from kerase3.models import Potential

    keras.utils.set_random_seed(0)
    model = Potential([29], cutoff=3.0, mul=4, lmax=1, layers=1, number_of_basis=4, radial_neurons=(8,),
                      compute_stress=True, dtype="float64")
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=0)
    atoms.calc = Calculator(model, jit_compile=False)
    e = atoms.get_potential_energy()
    f = atoms.get_forces()
    s = atoms.get_stress()
    assert np.isfinite(e) and f.shape == (4, 3) and s.shape == (6,)
    np.testing.assert_allclose(f.sum(0), 0.0, atol=1e-10)  # translation invariance: forces sum to zero
    # forces are minus the gradient of the calculator's energy
    eps = 1e-5
    p = atoms.get_positions()
    energies = []
    for sgn in (1, -1):
        q = p.copy()
        q[1, 2] += sgn * eps
        atoms.set_positions(q)
        energies.append(atoms.get_potential_energy())
    atoms.set_positions(p)
    np.testing.assert_allclose(f[1, 2], -(energies[0] - energies[1]) / (2 * eps), atol=1e-6)
    # a few MD steps run and conserve energy roughly
    dyn = VelocityVerlet(atoms, 1.0 * units.fs)
    e0 = atoms.get_total_energy()
    dyn.run(5)
    assert abs(atoms.get_total_energy() - e0) < 1e-2


def test_compiled_calculator_matches_eager():
    from ase.build import bulk

    from kerase3.io.ase import Calculator
    from kerase3.models import Potential

    keras.utils.set_random_seed(1)
    model = Potential([29], cutoff=3.0, mul=4, lmax=1, layers=1, number_of_basis=4, radial_neurons=(8,))
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=1)
    atoms.calc = Calculator(model)  # XLA, padded to buckets
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = Calculator(model, pad=False, jit_compile=False)
    np.testing.assert_allclose(atoms.get_potential_energy(), e, atol=1e-5)
    np.testing.assert_allclose(atoms.get_forces(), f, atol=1e-5)


def test_calculator_refuses_elements_the_model_does_not_know():
    from ase import Atoms

    from kerase3.io.ase import Calculator
    from kerase3.models import Potential

    model = Potential([29, 79], cutoff=3.0, mul=4, lmax=1, layers=1, number_of_basis=4, radial_neurons=(8,))
    atoms = Atoms("CuO", positions=[[0, 0, 0], [0, 0, 2.0]])
    atoms.calc = Calculator(model, jit_compile=False)
    with pytest.raises(ValueError, match=r"\['O'\].*species=\[29, 79\]"):
        atoms.get_potential_energy()
    atoms = Atoms("CuAu", positions=[[0, 0, 0], [0, 0, 2.0]])
    atoms.calc = Calculator(model, jit_compile=False)
    assert np.isfinite(atoms.get_potential_energy())
