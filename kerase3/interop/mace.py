"""Trained mace-torch models in kerase3: ``load(state_dict, config)`` -> `kerase3.models.MACE`.

torch is not needed::

    state = {k: v.detach().cpu().numpy() for k, v in torch_model.state_dict().items()}
    model = kerase3.interop.mace.load(state, config)

``config`` holds ``ScaleShiftMACE``'s constructor arguments by name (``r_max``, ``num_bessel``,
``num_polynomial_cutoff``, ``max_ell``, ``num_interactions``, ``hidden_irreps`` and ``MLP_irreps`` as
strings, ``correlation``, ``radial_MLP``, ``avg_num_neighbors``, ``atomic_energies``,
``atomic_numbers``, ``atomic_inter_scale``, ``atomic_inter_shift``, ``interaction`` and optionally
``interaction_first`` (class names), ``gate`` (``"silu"`` or None), ``use_reduced_cg``). The
product basis's weights are mapped through the coupling tensors stored in the state dict onto
kerase3's basis of the same polynomials, so either of mace-torch's constructions loads.
"""

import numpy as np

from ..graph import keys as K
from ..interop.e3nn import load_weights
from ..models.mace import INTERACTIONS, MACE
from ..o3 import E3NN_04_FLIPS

__all__ = ["load", "conv_path_signs", "symmetric_contraction_weights"]

_REQUIRED = ("r_max", "num_bessel", "num_polynomial_cutoff", "max_ell", "num_interactions", "hidden_irreps", "MLP_irreps",
             "correlation", "avg_num_neighbors", "atomic_energies", K.ATOMIC_NUMBERS)
_UNSUPPORTED = ("pair_repulsion", "distance_transform", "heads", "cueq_config", "oeq_config", "embedding_specs",
                "edge_irreps", "use_so3", "use_agnostic_product", "use_last_readout_only", "use_embedding_readout",
                "radial_type", "apply_cutoff", "keep_last_layer_irreps", "use_edge_irreps_first", "lammps_mliap")
_DEFAULTS = dict(pair_repulsion=False, distance_transform="None", heads=None, cueq_config=None, oeq_config=None,
                 embedding_specs=None, edge_irreps=None, use_so3=False, use_agnostic_product=False,
                 use_last_readout_only=False, use_embedding_readout=False, radial_type="bessel", apply_cutoff=True,
                 keep_last_layer_irreps=False, use_edge_irreps_first=False, lammps_mliap=False)


def conv_path_signs(plan):
    """Per weight of a convolution plan, +1 or -1: the sign e3nn 0.4.4's Wigner 3j (mace-torch's)
    has against kerase3's on that path. A mace-torch radial MLP's last layer times these gives
    kerase3 the same messages (the per-edge weights absorb the sign)."""
    signs = np.ones(plan.weight_numel)
    for ins, sl in plan.weight_slices():
        ls = (plan.irreps_in1[ins.i_in1].ir.l, plan.irreps_in2[ins.i_in2].ir.l, plan.irreps_out[ins.i_out].ir.l)
        if ls in E3NN_04_FLIPS:
            signs[sl] = -1.0
    return signs


def symmetric_contraction_weights(layer, i, nu, u, w):
    """mace-torch's weights ``w [E, K, c]`` on its coupling tensor ``u`` (``U_matrix_nu`` of output
    ``i``) -> the `kerase3.layers.SymmetricContraction`'s ``[E, r, c]`` for the same polynomials
    (None where neither has one); a ``ValueError`` if ``u`` is outside the layer's basis."""
    coeffs = layer.express_in_basis(i, nu, u)
    if coeffs is None:
        return None
    w = np.asarray(w, np.float64)
    if w.ndim != 3 or w.shape[1] != coeffs.shape[1]:
        raise ValueError(f"mace.load: weights of shape {w.shape} do not fit a coupling tensor of {coeffs.shape[1]} paths "
                         f"(output {i}, degree {nu})")
    return np.einsum("rk,ekc->erc", coeffs, w)


def _np(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)  # dtype kept: float32 coupling tensors are checked at float32 precision


def _name(value):
    if value is None or isinstance(value, str):
        return value
    return getattr(value, "__name__", str(value))


def _gate(value):
    name = _name(value)
    if name in (None, "None"):
        return None
    if name in ("silu", "SiLU", "swish"):
        return "silu"
    raise ValueError(f"mace.load: gate {value!r} is not supported (supported: 'silu', None). Received: config['gate']={value!r}")


def _cross_check(state, cfg, model):
    """Every config value the state dict also holds must agree with it (naming both)."""
    def differs(key, value, config_key):
        if key in state and np.asarray(state[key]).size:
            held = np.asarray(state[key]).reshape(-1)
            want = np.asarray(value, np.float64).reshape(-1)
            if held.shape != want.shape or not np.allclose(held.astype(np.float64), want, rtol=1e-6, atol=1e-9):
                raise ValueError(f"mace.load: state_dict[{key!r}]={held.tolist()} but config[{config_key!r}]="
                                 f"{np.asarray(value).tolist()} (the weights belong to another configuration)")

    differs(K.ATOMIC_NUMBERS, model.species, K.ATOMIC_NUMBERS)  # mace-torch names its buffer and config key alike
    differs("r_max", model.cutoff, "r_max")
    differs("num_interactions", model.num_interactions, "num_interactions")
    for key in ("radial_embedding.bessel_fn.r_max", "radial_embedding.cutoff_fn.r_max"):
        differs(key, model.cutoff, "r_max")
    differs("radial_embedding.cutoff_fn.p", model.num_polynomial_cutoff, "num_polynomial_cutoff")
    if "radial_embedding.bessel_fn.bessel_weights" in state:
        n = np.asarray(state["radial_embedding.bessel_fn.bessel_weights"]).size
        if n != model.num_bessel:
            raise ValueError(f"mace.load: state_dict['radial_embedding.bessel_fn.bessel_weights'] has {n} functions but "
                             f"config['num_bessel']={model.num_bessel}")
    if "atomic_energies_fn.atomic_energies" in state:
        e0 = np.asarray(state["atomic_energies_fn.atomic_energies"]).reshape(-1)
        if e0.size != len(model.species):
            raise ValueError(f"mace.load: state_dict['atomic_energies_fn.atomic_energies'] has {e0.size} energies for "
                             f"{len(model.species)} elements in config['atomic_numbers']")


def load(state_dict, config, dtype="float32"):
    """A `kerase3.models.MACE` with the weights of a mace-torch ``ScaleShiftMACE`` (or ``MACE``).

    Args:
        state_dict: dict of numpy arrays (or torch tensors) keyed as ``model.state_dict()``.
        config: dict of the constructor arguments (see the module docstring).
        dtype: the Keras dtype policy of the model (``"float64"`` reproduces mace-torch's float64
            numbers to 1e-10 relative).

    Raises:
        ValueError: naming the key, for what kerase3 does not support (other interaction blocks,
            several heads, ZBL pair repulsion, distance transforms, cuEquivariance layouts...) or a
            state dict that does not fit the config.
    """
    cfg = dict(config)
    missing = [k for k in _REQUIRED if k not in cfg]
    if missing:
        raise ValueError(f"mace.load: config is missing {missing}. Received keys: {sorted(cfg)}")
    for key in _UNSUPPORTED:
        if key in cfg and cfg[key] != _DEFAULTS[key] and not (key == "heads" and cfg[key] in (["Default"], ("Default",))):
            raise ValueError(f"mace.load: config['{key}']={cfg[key]!r} is not supported by kerase3's MACE")
    interaction = _name(cfg.get("interaction", cfg.get("interaction_cls", INTERACTIONS[0])))
    first = _name(cfg.get("interaction_first", cfg.get("interaction_cls_first", interaction)))
    if interaction != INTERACTIONS[0]:
        raise ValueError(f"mace.load: config['interaction']={interaction!r} is not supported (kerase3's MACE has {INTERACTIONS[0]})")
    if first not in INTERACTIONS:
        raise ValueError(f"mace.load: config['interaction_first']={first!r} is not supported (supported: {INTERACTIONS})")
    state = {k: _np(v) for k, v in state_dict.items()}
    bad = [k for k in state if "cueq" in k or "conv_fusion" in k or k.startswith("joint_embedding") or "pair_repulsion" in k]
    if bad:
        raise ValueError(f"mace.load: state_dict key {bad[0]!r} belongs to a layout or block kerase3 does not support")
    n_int = int(cfg["num_interactions"])
    e0 = cfg["atomic_energies"]
    if isinstance(e0, dict):  # {Z: E0}, as mace-torch's training scripts write them
        missing_z = [int(z) for z in cfg[K.ATOMIC_NUMBERS] if int(z) not in {int(k) for k in e0}]
        if missing_z:
            raise ValueError(f"mace.load: config['atomic_energies'] has no energy for elements {missing_z}")
        e0 = [float({int(k): v for k, v in e0.items()}[int(z)]) for z in cfg[K.ATOMIC_NUMBERS]]
    e0 = np.asarray(e0, np.float64)
    if e0.ndim == 2:
        if e0.shape[0] != 1 and e0.shape[1] != 1:
            raise ValueError(f"mace.load: config['atomic_energies'] has several heads {e0.shape}; kerase3's MACE has one")
        e0 = e0.reshape(-1)
    correlation = cfg["correlation"]
    corr = [int(correlation)] * n_int if np.ndim(correlation) == 0 else [int(c) for c in correlation]
    model = MACE(species=[int(z) for z in cfg[K.ATOMIC_NUMBERS]], cutoff=float(cfg["r_max"]), hidden_irreps=str(cfg["hidden_irreps"]),
                 max_ell=int(cfg["max_ell"]), num_interactions=n_int, correlation=corr, num_bessel=int(cfg["num_bessel"]),
                 num_polynomial_cutoff=int(cfg["num_polynomial_cutoff"]), radial_mlp=list(cfg.get("radial_MLP") or [64, 64, 64]),
                 mlp_irreps=str(cfg["MLP_irreps"]), avg_num_neighbors=float(cfg["avg_num_neighbors"]), atomic_energies=e0,
                 scale=float(np.reshape(cfg.get("atomic_inter_scale", 1.0), -1)[0]),
                 shift=float(np.reshape(cfg.get("atomic_inter_shift", 0.0), -1)[0]),
                 interaction_first=first, gate=_gate(cfg.get("gate", "silu")), dtype=dtype)
    model.build()
    used = set()

    def get(key):
        if key not in state:
            raise ValueError(f"mace.load: state_dict has no key {key!r} (config and weights do not match)")
        used.add(key)
        return state[key]

    def expect(key, shape):
        w = get(key)
        if tuple(w.shape) != tuple(shape):
            raise ValueError(f"mace.load: state_dict[{key!r}] has shape {tuple(w.shape)}; the config gives {tuple(shape)}")
        return w

    def linear(layer, prefix):
        load_weights(layer, expect(prefix + ".weight", (layer.plan.weight_numel,)))
        if prefix + ".bias" in state:
            if get(prefix + ".bias").size:
                raise ValueError(f"mace.load: {prefix}.bias is not empty; kerase3's MACE has no biases there")

    linear(model.node_embedding, "node_embedding.linear")
    for i, (block, product, readout) in enumerate(zip(model.interactions, model.products, model.readouts)):
        p = f"interactions.{i}"
        linear(block.linear_up, p + ".linear_up")
        radial = [expect(f"{p}.conv_tp_weights.layer{j}.weight", tuple(k.shape))
                  for j, k in enumerate(block.conv_tp_weights.kernels)]
        radial[-1] = radial[-1] * conv_path_signs(block.conv_tp)[None, :]  # e3nn 0.4.4's Wigner signs
        load_weights(block.conv_tp_weights, radial)
        linear(block.linear, p + ".linear")
        load_weights(block.skip_tp, expect(p + ".skip_tp.weight", (block.skip_tp.weight_numel,)))
        sc = product.symmetric_contractions
        for k in range(len(sc.irreps_out)):
            q = f"products.{i}.symmetric_contractions.contractions.{k}"
            for nu in range(1, sc.correlation + 1):
                key = "weights_max" if nu == sc.correlation else f"weights.{sc.correlation - 1 - nu}"
                # mace's redundant coupling paths -> kerase3's basis of the same polynomials
                w = symmetric_contraction_weights(sc, k, nu, get(f"{q}.U_matrix_{nu}"), get(f"{q}.{key}"))
                if w is not None:
                    sc.weights_nu[k][nu - 1].assign(w.astype(sc.weights_nu[k][nu - 1].dtype))
        linear(product.linear, f"products.{i}.linear")
        if readout.irreps_hidden is None:
            linear(readout.linear, f"readouts.{i}.linear")
        else:
            linear(readout.linear_1, f"readouts.{i}.linear_1")
            linear(readout.linear_2, f"readouts.{i}.linear_2")
    for key in ("scale_shift.scale", "scale_shift.shift", "atomic_energies_fn.atomic_energies"):
        if key in state:
            used.add(key)
    if "scale_shift.scale" in state:
        model.scale.assign(float(np.reshape(state["scale_shift.scale"], -1)[0]))
        model.shift.assign(float(np.reshape(state["scale_shift.shift"], -1)[0]))
    if "atomic_energies_fn.atomic_energies" in state:
        model.atomic_energies_e0.assign(np.reshape(state["atomic_energies_fn.atomic_energies"], -1).astype(model.atomic_energies_e0.dtype))
    # buffers that only repeat the config (checked), masks and e3nn's cached constants
    for key in state:
        if state[key].size == 0 or key.endswith(("output_mask", "_zeroed", "bessel_weights", "prefactor", "r_max", ".p")) or "._compiled_main" in key \
                or key in (K.ATOMIC_NUMBERS, "num_interactions"):
            used.add(key)
    _cross_check(state, cfg, model)
    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(f"mace.load: state_dict key {unused[0]!r} is not used by kerase3's MACE ({len(unused)} unused keys)")
    return model
