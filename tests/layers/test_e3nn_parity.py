"""Same inputs and e3nn's weights (through load_weights) give e3nn's outputs, float64."""

import json

import numpy as np
import pytest
from keras import ops

from kerase3 import layers
from kerase3.interop.e3nn import load_weights
from kerase3.ops import radial

ATOL = 1e-10


def cases(ref, kind):
    names = sorted({k.split("/")[0] for k in ref if k.endswith("/config")})
    return [(n, json.loads(str(ref[f"{n}/config"]))) for n in names if json.loads(str(ref[f"{n}/config"]))["kind"] == kind]


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def test_tensor_product_every_mode(layers_ref):
    found = cases(layers_ref, "TensorProduct")
    assert {c["instructions"][0][3] for _, c in found} >= {"uvw", "uvu", "uvv", "uuw", "uuu", "uvuv"}
    assert any(not c["shared_weights"] for _, c in found)
    for name, cfg in found:
        kw = {k: cfg[k] for k in ("irrep_normalization", "path_normalization", "in1_var", "in2_var", "out_var") if k in cfg}
        shared = cfg["shared_weights"]
        tp = layers.TensorProduct(cfg["irreps_in1"], cfg["irreps_in2"], cfg["irreps_out"], cfg["instructions"],
                                  shared_weights=shared, dtype="float64", **kw)
        x1, x2, w = layers_ref[f"{name}/x1"], layers_ref[f"{name}/x2"], layers_ref[f"{name}/weight"]
        if shared:
            tp(x1, x2)
            load_weights(tp, w)
            y = tp(x1, x2)
        else:
            y = tp(x1, x2, w)
        np.testing.assert_allclose(_np(y), layers_ref[f"{name}/out"], atol=ATOL, rtol=0, err_msg=name)


@pytest.mark.parametrize("cls", ["FullyConnectedTensorProduct", "ElementwiseTensorProduct", "FullTensorProduct", "TensorSquare"])
def test_tensor_product_variants(layers_ref, cls):
    found = cases(layers_ref, cls)
    assert found
    for name, cfg in found:
        layer = getattr(layers, cls)(*cfg["args"], **cfg["kwargs"], shared_weights=cfg["shared_weights"], dtype="float64")
        assert str(layer.plan.irreps_out) == cfg["irreps_out"], name
        xs = [layers_ref[f"{name}/x1"]] + ([layers_ref[f"{name}/x2"]] if f"{name}/x2" in layers_ref else [])
        w = layers_ref[f"{name}/weight"]
        if cfg["shared_weights"]:
            layer(*xs)
            load_weights(layer, w)
            y = layer(*xs)
        else:
            y = layer(*xs, w)
        np.testing.assert_allclose(_np(y), layers_ref[f"{name}/out"], atol=ATOL, rtol=0, err_msg=name)


def test_linear(layers_ref):
    found = cases(layers_ref, "Linear")
    assert len(found) >= 5
    for name, cfg in found:
        shared = cfg.pop("shared_weights")
        cfg.pop("kind")
        lin = layers.Linear(**cfg, internal_weights=shared, dtype="float64")
        x = layers_ref[f"{name}/x1"]
        if shared:
            lin(x)
            load_weights(lin, layers_ref[f"{name}/weight"], layers_ref[f"{name}/bias"])
            y = lin(x)
        else:
            y = lin(x, layers_ref[f"{name}/weight"])
        np.testing.assert_allclose(_np(y), layers_ref[f"{name}/out"], atol=ATOL, rtol=0, err_msg=name)


def test_fully_connected_net(layers_ref):
    found = cases(layers_ref, "FullyConnectedNet")
    assert len(found) == 4
    for name, cfg in found:
        cfg.pop("kind")
        net = layers.FullyConnectedNet(**cfg, dtype="float64")
        x = layers_ref[f"{name}/x1"]
        net(x)
        load_weights(net, layers_ref[f"{name}/weight"])
        np.testing.assert_allclose(_np(net(x)), layers_ref[f"{name}/out"], atol=ATOL, rtol=0, err_msg=name)


def test_gate(layers_ref):
    found = cases(layers_ref, "Gate")
    assert len(found) == 5
    for name, cfg in found:
        gate = layers.Gate(cfg["irreps_scalars"], cfg["act_scalars"], cfg["irreps_gates"], cfg["act_gates"],
                           cfg["irreps_gated"], dtype="float64")
        assert str(gate.irreps_in) == cfg["irreps_in"] and str(gate.irreps_out) == cfg["irreps_out"], name
        y = gate(layers_ref[f"{name}/x1"])
        np.testing.assert_allclose(_np(y), layers_ref[f"{name}/out"], atol=ATOL, rtol=0, err_msg=name)


def test_norm_and_norm_activation(layers_ref):
    for name, cfg in cases(layers_ref, "Norm"):
        y = layers.Norm(cfg["irreps_in"], squared=cfg["squared"], dtype="float64")(layers_ref[f"{name}/x1"])
        np.testing.assert_allclose(_np(y), layers_ref[f"{name}/out"], atol=ATOL, rtol=0, err_msg=name)
    layer = layers.NormActivation("2x0e+3x1o+1x2e", "sigmoid", bias=True, dtype="float64")
    x = layers_ref["normact/x1"]
    layer(x)
    layer.biases.assign(layers_ref["normact/weight"])
    np.testing.assert_allclose(_np(layer(x)), layers_ref["normact/out"], atol=ATOL, rtol=0)


def test_batch_norm(layers_ref):
    for name, cfg in cases(layers_ref, "BatchNorm"):
        cfg.pop("kind")
        bn = layers.BatchNorm(**cfg, dtype="float64")
        x = layers_ref[f"{name}/x1"]
        bn(x)
        bn.weight.assign(layers_ref[f"{name}/weight"])
        bn.bias.assign(layers_ref[f"{name}/bias"])
        np.testing.assert_allclose(_np(bn(x, training=True)), layers_ref[f"{name}/out"], atol=ATOL, err_msg=name)
        if not cfg.get("instance"):
            np.testing.assert_allclose(_np(bn.running_mean), layers_ref[f"{name}/running_mean"], atol=ATOL)
            np.testing.assert_allclose(_np(bn.running_var), layers_ref[f"{name}/running_var"], atol=ATOL)
            np.testing.assert_allclose(_np(bn(x, training=False)), layers_ref[f"{name}/out_eval"], atol=ATOL, err_msg=name)


@pytest.mark.parametrize("basis", ["gaussian", "cosine", "smooth_finite", "fourier", "bessel"])
@pytest.mark.parametrize("cutoff", [True, False])
def test_soft_one_hot_linspace(layers_ref, basis, cutoff):
    x = layers_ref["radial_x"]
    y = radial.soft_one_hot_linspace(x, 0.1, 2.0, 7, basis, cutoff)
    np.testing.assert_allclose(_np(y), layers_ref[f"radial_{basis}_{int(cutoff)}/out"], atol=1e-6 if basis == "smooth_finite" else ATOL)
    np.testing.assert_allclose(_np(radial.soft_unit_step(x)), layers_ref["soft_unit_step"], atol=ATOL)
