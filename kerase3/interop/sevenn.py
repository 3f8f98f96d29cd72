"""SevenNet checkpoints as kerase3 models, read without torch.

`load` reads a ``checkpoint_*.pth`` written by SevenNet's trainer (``torch.save`` of
``model_state_dict`` and ``config``) with `kerase3.interop.torch_checkpoint.read_torch_checkpoint`
and returns a `kerase3.models.Potential`: SevenNet's NequIP blocks are the Potential's general
options (irreps per block, rotation-only irreps, linear or species self-connections, biases, gate
activations by parity, the XPLOR or polynomial envelope, learned Bessel frequencies, a linear readout, per-species
scale and shift, one convolution denominator per block). The result is an ordinary `EnergyModel`:
energies, forces and stress, ``fit``, ``.keras`` files, `kerase3.io.ase.Calculator`,
`kerase3.io.lammps` and `kerase3.export`.

The pretrained potentials are found by name in an installed ``sevenn`` package (nothing of it is
imported, so torch is not needed) or in a wheel fetched with ``pip download --no-deps sevenn``
(`download` does that into kerase3's cache, where `load` then looks):

========================  ===============================================================
name                      file in ``sevenn/pretrained_potentials``
========================  ===============================================================
``"7net-0"``              ``SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth``
``"7net-l3i5"``           ``SevenNet_l3i5/checkpoint_l3i5.pth``
``"7net-mf-0"``           ``SevenNet_MF_0/checkpoint_sevennet_mf_0.pth`` (with ``modality=``)
========================  ===============================================================

Example:
    >>> from kerase3.interop import sevenn
    >>> model = sevenn.load("7net-0")  # doctest: +SKIP
    >>> from kerase3.io.ase import Calculator  # doctest: +SKIP
    >>> atoms.calc = Calculator(model)  # doctest: +SKIP
"""

import glob
import importlib.util
import io
import os
import subprocess
import sys
import zipfile

import numpy as np

from ..backend import cache_dir
from ..export.cpp_harness import locked
from ..o3 import Irreps, wigner_3j
from .e3nn import load_weights
from .torch_checkpoint import read_torch_checkpoint

__all__ = ["load", "read", "find_checkpoint", "download", "model_options", "PRETRAINED", "SEVENN_VERSION"]

#: the sevenn release whose checkpoints were compared with sevenn's own numbers
SEVENN_VERSION = "0.13.0"

#: name -> path inside the ``sevenn`` package
PRETRAINED = {
    "7net-0": "pretrained_potentials/SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth",
    "7net-l3i5": "pretrained_potentials/SevenNet_l3i5/checkpoint_l3i5.pth",
    "7net-mf-0": "pretrained_potentials/SevenNet_MF_0/checkpoint_sevennet_mf_0.pth",
}
_ALIASES = {"sevennet-0": "7net-0", "7net-0_11jul2024": "7net-0", "sevennet-0_11jul2024": "7net-0",
            "sevennet-l3i5": "7net-l3i5", "sevennet-mf-0": "7net-mf-0"}

# config entries that change the model, and what kerase3 supports of them
_SUPPORTED = {
    "interaction_type": ("nequip",),
    "readout_as_fcn": (False,),
    "use_bias_in_linear": (False, True),
    "self_connection_type": ("linear", "nequip"),
    "_normalize_sph": (True,),
    "lmax_edge": (-1,),
    "lmax_node": (-1,),
    "_model_type": ("E3_equivariant_model",),
}
_ACTIVATIONS = ("silu", "tanh", "sigmoid", "relu", "abs")


def _package_dirs():
    spec = importlib.util.find_spec("sevenn")  # finds the package without importing it (no torch)
    found = list(spec.submodule_search_locations or []) if spec is not None else []
    return found + sorted(glob.glob(os.path.join(cache_dir("sevenn"), "sevenn-*.whl")), reverse=True)


def download(directory=None, version=SEVENN_VERSION, timeout=300):
    """Fetch the ``sevenn`` wheel (its pretrained checkpoints inside) without its dependencies:
    ``pip download --no-deps sevenn==version`` into ``directory`` (default kerase3's cache, where
    `load` looks for named checkpoints). Returns the wheel's path; a ``RuntimeError`` with pip's
    message when it cannot be fetched."""
    directory = directory or cache_dir("sevenn")
    os.makedirs(directory, exist_ok=True)
    wheel = os.path.join(directory, f"sevenn-{version}-py3-none-any.whl")
    with locked(os.path.join(directory, ".download.lock")):  # one download for parallel processes
        if not os.path.isfile(wheel):
            _pip_download(directory, version, wheel, timeout)
    return wheel


def _pip_download(directory, version, wheel, timeout):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q", "-d", directory,
           f"sevenn=={version}"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0 or not os.path.isfile(wheel):
        raise RuntimeError(f"sevenn.download: `{' '.join(cmd)}` failed: {(run.stderr or run.stdout).strip()[-500:]}")


def find_checkpoint(name, search=()):
    """The bytes of pretrained checkpoint ``name`` (`PRETRAINED`), from ``search`` (directories
    holding ``sevenn/`` or ``pretrained_potentials/``, or ``sevenn-*.whl`` files) or the installed
    ``sevenn`` package. A ``ValueError`` lists the places looked in when it is nowhere."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in PRETRAINED:
        raise ValueError(f"sevenn.load: unknown pretrained potential {name!r}; known: {sorted(PRETRAINED)} "
                         "(or give the path of a checkpoint_*.pth)")
    member = PRETRAINED[key]
    looked = []
    for place in [*search, *_package_dirs()]:
        place = os.fspath(place)
        looked.append(place)
        if place.endswith(".whl") and os.path.isfile(place):
            with zipfile.ZipFile(place) as whl:
                if "sevenn/" + member in whl.namelist():
                    return whl.read("sevenn/" + member)
            continue
        for candidate in (os.path.join(place, member), os.path.join(place, "sevenn", member),
                          os.path.join(place, member.split("/", 1)[1])):
            if os.path.isfile(candidate):
                with open(candidate, "rb") as f:
                    return f.read()
    raise ValueError(f"sevenn.load: checkpoint {member} of {key!r} not found (looked in {looked or 'no installed sevenn'}); "
                     "call kerase3.interop.sevenn.download() (the wheel, without torch), `pip install sevenn`, "
                     "or pass search=[a sevenn wheel or folder]")


def read(checkpoint, search=(), fetch=True):
    """``(state_dict, config)`` of a SevenNet checkpoint: a path, a name of `PRETRAINED`, bytes,
    an already read ``dict`` with ``model_state_dict`` and ``config``, or `read`'s own tuple."""
    if isinstance(checkpoint, tuple) and len(checkpoint) == 2:
        checkpoint = {"model_state_dict": checkpoint[0], "config": checkpoint[1]}
    if isinstance(checkpoint, dict):
        ckpt = checkpoint
    else:
        if isinstance(checkpoint, (bytes, bytearray)):
            source, where = io.BytesIO(checkpoint), "checkpoint bytes"
        elif os.path.exists(os.fspath(checkpoint)):
            source = where = os.fspath(checkpoint)
        else:
            source, where = io.BytesIO(_named(str(checkpoint), search, fetch)), str(checkpoint)
        ckpt = read_torch_checkpoint(source)
        if not isinstance(ckpt, dict):
            raise ValueError(f"sevenn.load: {where} holds a {type(ckpt).__name__}, not a SevenNet checkpoint dict")
    missing = [k for k in ("model_state_dict", "config") if k not in ckpt]
    if missing:
        raise ValueError(f"sevenn.load: the checkpoint has no {missing} (keys: {sorted(ckpt)[:10]}); "
                         "not a checkpoint of SevenNet's trainer")
    state = {k: np.asarray(v) for k, v in ckpt["model_state_dict"].items()}
    return state, dict(ckpt["config"])


def _named(name, search, fetch):
    """A named checkpoint's bytes; with ``fetch``, the sevenn wheel is downloaded into kerase3's
    cache when no install, search place or cache has it (as pretrained-model loaders do)."""
    try:
        return find_checkpoint(name, search)
    except ValueError:
        key = _ALIASES.get(name.lower(), name.lower())
        if not fetch or key not in PRETRAINED:
            raise
    print(f"kerase3.interop.sevenn: {name!r} not found here; fetching sevenn {SEVENN_VERSION}'s wheel "
          f"(pip download --no-deps) into {cache_dir('sevenn')}", file=sys.stderr)
    try:
        download()
    except Exception as e:  # offline: the first error's advice, and why fetching failed
        raise ValueError(f"sevenn.load: {name!r} is not installed here and could not be fetched ({e})") from e
    return find_checkpoint(name, search)


def _irreps_of_blocks(cfg):
    """SevenNet's node irreps: ``irreps_manual`` or what its ``infer_irreps_out`` gives."""
    n = int(cfg["num_convolution_layer"])
    manual = cfg.get("irreps_manual", False)
    if manual not in (False, None):
        irreps = [Irreps(str(i)) for i in manual]
        if len(irreps) != n + 1:
            raise ValueError(f"sevenn.load: config['irreps_manual'] has {len(irreps)} entries; "
                             f"num_convolution_layer={n} needs {n + 1}")
        return irreps
    channel, lmax = int(cfg["channel"]), int(cfg["lmax"])
    p = -1 if cfg["is_parity"] else 1
    sh = Irreps.spherical_harmonics(lmax, p)
    irreps = [Irreps(f"{channel}x0e")]
    for t in range(n):
        last = t == n - 1
        reach = {ir for _, a in irreps[-1] for _, b in sh for ir in a * b}
        out = sorted(ir for ir in reach if ir.l <= (0 if last else lmax) and not (last and ir.p == -1))
        irreps.append(Irreps([(channel, ir) for ir in out]))
    return irreps


def model_options(config, state=None):
    """The `kerase3.models.Potential` arguments of a SevenNet config; a ``ValueError`` names any
    entry kerase3 does not support."""
    cfg = dict(config)
    for key, allowed in _SUPPORTED.items():
        if key in cfg and cfg[key] not in allowed:
            raise ValueError(f"sevenn.load: config['{key}']={cfg[key]!r} is not supported (supported: {list(allowed)})")
    for key in ("act_scalar", "act_gate"):
        bad = {k: v for k, v in dict(cfg[key]).items() if v not in _ACTIVATIONS}
        if bad:
            raise ValueError(f"sevenn.load: config['{key}']={cfg[key]!r}: activation {bad} is not supported ({list(_ACTIVATIONS)})")
    if cfg.get("act_radial", "silu") not in _ACTIVATIONS:
        raise ValueError(f"sevenn.load: config['act_radial']={cfg['act_radial']!r} is not supported ({list(_ACTIVATIONS)})")
    rbf = dict(cfg["radial_basis"])
    if rbf.get("radial_basis_name") != "bessel":
        raise ValueError(f"sevenn.load: config['radial_basis']={rbf!r} is not supported (bessel only)")
    env = dict(cfg["cutoff_function"])
    name = env.get("cutoff_function_name")
    if name == "XPLOR":
        envelope = dict(radial_cutoff="xplor", radial_r_on=float(env["cutoff_on"]))
    elif name == "poly_cut":
        envelope = dict(radial_cutoff="polynomial", polynomial_p=int(env.get("poly_cut_p_value", 6)))
    else:
        raise ValueError(f"sevenn.load: config['cutoff_function']={env!r} is not supported (XPLOR or poly_cut)")
    species = [int(z) for z in cfg["_chemical_species_by_atomic_number"]]
    type_map = {int(z): int(i) for z, i in dict(cfg["_type_map"]).items()}
    if any(type_map.get(z) != i for i, z in enumerate(species)):
        raise ValueError("sevenn.load: config['_type_map'] does not follow config['_chemical_species_by_atomic_number']")
    irreps = _irreps_of_blocks(cfg)
    first = irreps[0]
    if len(first) != 1 or first[0].ir.l != 0 or first[0].ir.p != 1 or Irreps(irreps[1])[0].mul != first[0].mul:
        raise ValueError(f"sevenn.load: node irreps {first} entering the first block are not supported "
                         f"(kerase3 lifts the species to the first block's {Irreps(irreps[1])[0]})")
    n = int(cfg["num_convolution_layer"])
    trainable = state is None or "edge_embedding.basis_function.coeffs" in state
    return dict(species=species, cutoff=float(cfg["cutoff"]), mul=int(cfg.get("channel", first[0].mul)),
                lmax=int(cfg["lmax"]), num_interactions=n, number_of_basis=int(rbf.get("bessel_basis_num", 8)),
                radial_neurons=[int(h) for h in cfg["weight_nn_hidden_neurons"]], parity=bool(cfg["is_parity"]),
                irreps_hidden=[str(i) for i in irreps[1:]],
                self_connection={"linear": "linear", "nequip": "species"}[cfg.get("self_connection_type", "linear")],
                scalar_activations=dict(cfg["act_scalar"]), gate_activations=dict(cfg["act_gate"]),
                radial_act=cfg.get("act_radial", "silu"), trainable_basis=trainable,
                readout_neurons=irreps[-1].dim // 2, readout_activation=None,
                linear_biases=bool(cfg.get("use_bias_in_linear", False)) or bool(cfg.get("use_modality", False)), **envelope)


def _sorted_paths(cfg):
    """Whether the checkpoint's convolution weights follow its paths sorted by output (sevenn 0.11
    on) rather than in the order they were made (earlier versions, the pretrained ones: kerase3's
    order)."""
    parts = str(cfg.get("version", "0.0.0")).split(".")
    try:
        version = tuple(int(p) for p in parts[:3])
    except ValueError:
        raise ValueError(f"sevenn.load: config['version']={cfg.get('version')!r} is not a version") from None
    return version > (0, 11, 0) or (version == (0, 11, 0) and parts[3:] != ["dev0"])


def _paths_in_our_order(conv, last):
    """The radial network's last layer ``[H, numel]`` with columns by path sorted by output (sevenn
    0.11 on) -> kerase3's order (the order the paths were made)."""
    slices = conv.plan.weight_slices()
    order = sorted(range(len(slices)), key=lambda k: slices[k][0].i_out)  # stable, as sevenn's sort
    out, start = np.zeros_like(last), 0
    for k in order:
        sl = slices[k][1]
        n = sl.stop - sl.start
        out[:, sl] = last[:, start:start + n]
        start += n
    return out


def _path_signs(conv, state, prefix):
    """Per weight of ``conv``'s tensor product, the sign between the checkpoint's stored Wigner 3j
    buffers (``_w3j_l1_l2_l3``, e3nn 0.4's on SevenNet-0) and kerase3's; +1 where none is stored."""
    plan = conv.plan
    signs = np.ones(plan.weight_numel)
    for ins, sl in plan.weight_slices():
        ls = (plan.irreps_in1[ins.i_in1].ir.l, plan.irreps_in2[ins.i_in2].ir.l, plan.irreps_out[ins.i_out].ir.l)
        key = f"{prefix}.convolution._compiled_main_left_right._w3j_{ls[0]}_{ls[1]}_{ls[2]}"
        if key in state:
            stored, ours = np.asarray(state[key], np.float64), wigner_3j(*ls)
            dot = float(np.sum(stored * ours))
            if abs(abs(dot) - 1.0) > 1e-4 and not np.allclose(np.abs(stored), np.abs(ours), atol=1e-5):
                raise ValueError(f"sevenn.load: {key} is not a Wigner 3j symbol of kerase3's basis, up to sign")
            signs[sl] = np.sign(dot) if dot != 0 else 1.0
    return signs


def load(checkpoint, dtype="float32", modality=None, search=(), compute_stress=True, fetch=True):
    """A `kerase3.models.Potential` with the weights of a SevenNet checkpoint.

    Args:
        checkpoint: path of a ``checkpoint_*.pth``, a name of `PRETRAINED` (``"7net-0"``,
            ``"7net-l3i5"``, ``"7net-mf-0"``), its bytes, or ``(state_dict, config)`` as `read` gives.
        dtype: the Keras dtype policy of the model.
        modality: for multi-fidelity checkpoints, the fidelity (e.g. ``"PBE"``, ``"R2SCAN"``).
        search: directories or ``sevenn-*.whl`` files to find named checkpoints in (before the
            installed package).
        compute_stress: `bool`, as `EnergyModel`'s.
        fetch: `bool`, download the sevenn wheel (no torch) into kerase3's cache when a named
            checkpoint is nowhere here (`download`).

    Raises:
        ValueError: naming what is not supported (config entries, state keys), a state that does
            not fit its config, or a modality the checkpoint does not have.
    """
    from ..models import Potential

    state, cfg = read(checkpoint, search, fetch)
    modal = _modality(cfg, modality)
    options = model_options(cfg, state)
    model = Potential(**options, compute_stress=compute_stress, dtype=dtype)
    model.build()
    used = set()

    def get(key, shape=None):
        if key not in state:
            raise ValueError(f"sevenn.load: the checkpoint has no {key!r} (its config and weights do not match)")
        used.add(key)
        w = state[key]
        if shape is not None and tuple(w.shape) != tuple(shape):
            raise ValueError(f"sevenn.load: {key!r} has shape {tuple(w.shape)}; the config gives {tuple(shape)}")
        return w

    def linear(layer, prefix, modal_flag=None):
        """e3nn's weights (and biases) of ``prefix``; with the modality one-hot among its inputs
        (``modal_flag`` set in the config) the chosen modality folded into the biases."""
        folded = modal is not None and bool(cfg.get(modal_flag, False)) if modal_flag else False
        if folded:
            weight, bias = _fold_modality(layer, get(prefix + ".linear.weight"), modal, num_modal, prefix)
        else:
            weight, bias = get(prefix + ".linear.weight", (layer.plan.weight_numel,)), np.zeros(layer.plan.bias_numel)
        stored = get(prefix + ".linear.bias") if prefix + ".linear.bias" in state else np.zeros(0)
        if stored.size:
            if stored.size != layer.plan.bias_numel:
                raise ValueError(f"sevenn.load: {prefix}.linear.bias has {stored.size} values; the config gives {layer.plan.bias_numel}")
            bias = bias + np.asarray(stored, np.float64)
        if layer.plan.bias_numel:
            load_weights(layer, weight, bias)
        else:
            load_weights(layer, weight)

    enc = model.encoder
    if options["trainable_basis"]:
        coeffs = get("edge_embedding.basis_function.coeffs", (enc.edges.radial.number,))
        enc.edges.radial.freqs.assign((coeffs * options["cutoff"]).astype(enc.edges.radial.freqs.dtype))
    num_modal = len(cfg.get("_modal_map") or {})
    sorted_paths = _sorted_paths(cfg)
    linear(enc.embed_linear, "onehot_to_feature_x", "use_modal_node_embedding")
    for t, conv in enumerate(enc.interactions.convs):
        if conv.irreps_node_attr is None:
            linear(conv.self_connection, f"{t}_self_connection_intro")
        else:  # NequIP's: a tensor product with the one-hot species
            key = f"{t}_self_connection_intro.fc_tensor_product.weight"
            load_weights(conv.self_connection, get(key, (conv.self_connection.weight_numel,)))
        linear(conv.lin1, f"{t}_self_interaction_1", "use_modal_self_inter_intro")
        radial = [get(f"{t}_convolution.weight_nn.layer{j}.weight", tuple(k.shape)) for j, k in enumerate(conv.radial.kernels)]
        if sorted_paths:
            radial[-1] = _paths_in_our_order(conv, np.asarray(radial[-1]))
        radial[-1] = radial[-1] * _path_signs(conv, state, f"{t}_convolution")[None, :]
        load_weights(conv.radial, radial)
        denominator = float(np.reshape(get(f"{t}_convolution.denominator"), -1)[0])
        conv.avg_num_neighbors = denominator**2
        linear(conv.lin2, f"{t}_self_interaction_2", "use_modal_self_inter_outro")
    linear(model.readout1, "reduce_input_to_hidden", "use_modal_output_block")
    linear(model.readout2, "reduce_hidden_to_energy")
    t = len(options["species"])
    shift = np.asarray(get("rescale_atomic_energy.shift"), np.float64)
    scale = np.asarray(get("rescale_atomic_energy.scale"), np.float64)
    if modal is not None and shift.ndim == 2:
        shift = shift[modal]
    if modal is not None and scale.ndim == 2:
        scale = scale[modal]
    shift, scale = np.broadcast_to(shift.reshape(-1), (t,)), np.broadcast_to(scale.reshape(-1), (t,))
    model.energy_shift.assign(np.append(shift, 0.0).astype(model.energy_shift.dtype))
    model.energy_scale.assign(np.append(scale, 1.0).astype(model.energy_scale.dtype))
    # e3nn's masks and cached Wigner symbols (their signs are folded in above) repeat the config
    for key in state:
        if state[key].size == 0 or key.endswith("output_mask") or "._compiled_main" in key:
            used.add(key)
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(f"sevenn.load: checkpoint key {unused[0]!r} is not used by kerase3's model "
                         f"({len(unused)} unused keys); this SevenNet layout is not supported")
    return model


def _modality(cfg, modality):
    """Index of ``modality`` in a multi-fidelity checkpoint's ``_modal_map`` (None for one fidelity)."""
    if not cfg.get("use_modality", False):
        if modality is not None:
            raise ValueError(f"sevenn.load: this checkpoint has one fidelity; modality={modality!r} is not used")
        return None
    modal_map = {str(k): int(v) for k, v in dict(cfg.get("_modal_map") or {}).items()}
    if modality is None or str(modality) not in modal_map:
        raise ValueError(f"sevenn.load: a multi-fidelity checkpoint needs modality= one of {sorted(modal_map)}. "
                         f"Received: modality={modality!r}")
    return modal_map[str(modality)]


def _fold_modality(layer, weight, modal, num_modal, prefix):
    """e3nn's ``Linear(irreps_in + num_modal x 0e -> irreps_out)`` weights, the last input the
    modality one-hot, as ``(weight, bias)`` of ``layer`` (``Linear(irreps_in -> irreps_out)`` with
    biases) for the fixed modality ``modal``: the same outputs, e3nn's normalisation included."""
    plan = layer.plan
    irreps_in = list(plan.irreps_in) + [Irreps(f"{num_modal}x0e")[0]]
    instr = [(i, o) for i, (_, ir_i) in enumerate(irreps_in) for o, (_, ir_o) in enumerate(plan.irreps_out) if ir_i == ir_o]
    sizes = [irreps_in[i].mul * plan.irreps_out[o].mul for i, o in instr]
    weight = np.asarray(weight, np.float64).reshape(-1)
    if weight.size != sum(sizes):
        raise ValueError(f"sevenn.load: {prefix}.linear.weight has {weight.size} values; "
                         f"{plan.irreps_in} + {num_modal}x0e -> {plan.irreps_out} needs {sum(sizes)}")
    fan_in = {o: sum(irreps_in[i].mul for i, p in instr if p == o) for o in range(len(plan.irreps_out))}
    pieces = np.split(weight, np.cumsum(sizes)[:-1])
    blocks, bias = {}, {}
    for (i, o), w in zip(instr, pieces):
        w = w.reshape(irreps_in[i].mul, plan.irreps_out[o].mul)
        if i == len(irreps_in) - 1:  # the modality: a constant input, a bias
            bias[o] = w[modal] / np.sqrt(fan_in[o])
        else:
            blocks[(i, o)] = w
    out = []
    for i_in, i_out, _, alpha in plan.instructions:
        out.append(blocks[(i_in, i_out)].reshape(-1) / np.sqrt(fan_in[i_out]) / alpha)
    biases = [bias.get(o, np.zeros(mul)) for o, ((mul, _), b) in enumerate(zip(plan.irreps_out, plan.biases)) if b]
    return np.concatenate(out), (np.concatenate(biases) if biases else np.zeros(0))
