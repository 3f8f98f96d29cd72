"""Make e3nn reference fixtures for kerase3's tensor products and linear layers.

Run by hand in a separate environment (the test suite never imports torch):

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.13.0 e3nn==0.6.0 numpy
    /tmp/ref/bin/python tests/reference/make_layer_fixtures.py

Writes tests/reference/layers_e3nn.npz: for each case, its config (JSON), the inputs,
e3nn's flat weights and e3nn's output, all float64.
"""

import json
import os

import numpy as np
import torch
from e3nn import o3

torch.set_default_dtype(torch.float64)
torch.manual_seed(0)
out = {}
B = 5


def save(name, config, inputs, weight, output, bias=None):
    out[f"{name}/config"] = np.array(json.dumps(config))
    for i, x in enumerate(inputs):
        out[f"{name}/x{i + 1}"] = x.detach().numpy()
    out[f"{name}/weight"] = weight.detach().numpy()
    if bias is not None:
        out[f"{name}/bias"] = bias.detach().numpy()
    out[f"{name}/out"] = output.detach().numpy()


def tp_case(name, irreps_in1, irreps_in2, irreps_out, instructions, shared=True, **kw):
    try:
        tp = o3.TensorProduct(irreps_in1, irreps_in2, irreps_out, instructions, shared_weights=shared, internal_weights=shared, **kw)
    except AssertionError as e:
        raise SystemExit(f"invalid case {name}") from e
    x1 = tp.irreps_in1.randn(B, -1)
    x2 = tp.irreps_in2.randn(B, -1)
    if shared:
        w = tp.weight if tp.weight_numel else torch.zeros(0)
        y = tp(x1, x2)
    else:
        w = torch.randn(B, tp.weight_numel)
        y = tp(x1, x2, w)
    cfg = dict(kind="TensorProduct", irreps_in1=irreps_in1, irreps_in2=irreps_in2, irreps_out=irreps_out,
               instructions=[list(i) for i in instructions], shared_weights=shared, **kw)
    save(name, cfg, [x1, x2], w, y)


# every mode, shared (internal) weights and per-sample (external) weights
tp_case("uvw", "2x0e+3x1o+2x2e", "2x0e+1o+2x1e", "3x0e+2x1o+2x1e+2x2e",
        [(0, 0, 0, "uvw", True), (1, 1, 0, "uvw", True), (1, 1, 3, "uvw", True), (2, 1, 1, "uvw", True),
         (1, 0, 1, "uvw", True), (1, 2, 1, "uvw", True), (2, 2, 3, "uvw", True), (0, 1, 1, "uvw", True, 0.5)])
tp_case("uvw_ext", "2x0e+3x1o+2x2e", "2x0e+1o+2x1e", "3x0e+2x1o+2x2e",
        [(0, 0, 0, "uvw", True), (1, 1, 0, "uvw", True), (1, 1, 2, "uvw", True), (2, 1, 1, "uvw", True), (1, 0, 1, "uvw", True)],
        shared=False)
tp_case("uvu", "3x0e+3x1o+2x2e", "0e+1o+2e", "3x0e+3x1o+2x2e+3x1e+3x2e",
        [(0, 0, 0, "uvu", True), (1, 1, 0, "uvu", True), (0, 1, 1, "uvu", True), (1, 0, 1, "uvu", True),
         (1, 2, 1, "uvu", True), (2, 0, 2, "uvu", True), (1, 1, 3, "uvu", True), (1, 1, 4, "uvu", True)])
tp_case("uvu_ext", "4x0e+4x1o+2x2e", "0e+1o+2e", "4x0e+4x1o+2x2e",
        [(0, 0, 0, "uvu", True), (1, 1, 0, "uvu", True), (0, 1, 1, "uvu", True), (1, 0, 1, "uvu", True),
         (1, 2, 1, "uvu", True), (2, 0, 2, "uvu", True), (2, 2, 2, "uvu", True)], shared=False)
tp_case("uvu_multi", "3x0e+2x1o", "2x0e+3x1o", "3x0e+2x1o+3x1o+2x0e",
        [(0, 0, 0, "uvu", True), (1, 1, 3, "uvu", False), (1, 0, 1, "uvu", True), (0, 1, 2, "uvu", True)])
tp_case("uvv", "2x0e+3x1o", "3x0e+2x1o", "3x0e+2x1e",
        [(0, 0, 0, "uvv", True), (1, 1, 1, "uvv", True), (0, 0, 0, "uvv", False)])
tp_case("uvv_ext", "2x0e+3x1o", "3x0e+2x1o+2x2e", "3x0e+2x1e+2x2e+2x1o",
        [(0, 0, 0, "uvv", True), (1, 1, 1, "uvv", True), (1, 2, 3, "uvv", True), (1, 1, 2, "uvv", True)], shared=False)
tp_case("uuw", "3x0e+3x1o+3x2e", "3x0e+3x1o+3x2e", "4x0e+2x1o+1x1e+2x2e",
        [(0, 0, 0, "uuw", True), (1, 1, 0, "uuw", True), (1, 1, 2, "uuw", False), (1, 2, 1, "uuw", True), (2, 2, 3, "uuw", True)])
tp_case("uuw_ext", "3x0e+3x1o", "3x0e+3x1o", "4x0e+2x1o",
        [(0, 0, 0, "uuw", True), (1, 1, 0, "uuw", True), (0, 1, 1, "uuw", True)], shared=False)
tp_case("uuu", "3x0e+3x1o+3x2e", "3x0e+3x1o+3x2e", "3x0e+3x1o+3x1e+3x2e",
        [(0, 0, 0, "uuu", True), (1, 1, 0, "uuu", False), (1, 1, 2, "uuu", True), (1, 2, 1, "uuu", True), (2, 2, 3, "uuu", False), (0, 1, 1, "uuu", True)])
tp_case("uuu_ext", "3x0e+3x1o", "3x0e+3x1o", "3x0e+3x1o+3x1e",
        [(0, 0, 0, "uuu", True), (1, 1, 2, "uuu", True), (0, 1, 1, "uuu", True)], shared=False)
tp_case("uvuv", "2x0e+3x1o", "2x1o+1x2e", "4x1o+6x0e+6x2e+3x1o+3x3o",
        [(0, 0, 0, "uvuv", True), (1, 0, 1, "uvuv", False), (1, 0, 2, "uvuv", True), (1, 1, 3, "uvuv", True), (1, 1, 4, "uvuv", False)])
tp_case("uvuv_ext", "2x0e+3x1o", "2x1o", "4x1o+6x0e+6x2e",
        [(0, 0, 0, "uvuv", True), (1, 0, 1, "uvuv", True), (1, 0, 2, "uvuv", True)], shared=False)
tp_case("norm_path", "2x0e+3x1o+2x2e", "0e+1o", "2x0e+3x1o+2x2e",
        [(0, 0, 0, "uvu", True), (1, 1, 0, "uvw", True), (1, 0, 1, "uvu", True), (2, 1, 1, "uvw", True), (2, 0, 2, "uvu", True)],
        irrep_normalization="norm", path_normalization="path")
tp_case("none_norm", "2x0e+3x1o", "0e+1o", "2x0e+3x1o",
        [(0, 0, 0, "uvu", True), (1, 1, 0, "uvw", True), (1, 0, 1, "uvu", True)],
        irrep_normalization="none", path_normalization="none")
tp_case("vars", "2x0e+3x1o", "0e+1o", "2x0e+3x1o",
        [(0, 0, 0, "uvu", True), (1, 1, 0, "uvw", True), (1, 0, 1, "uvu", True), (0, 1, 1, "uvw", True)],
        in1_var=[1.0, 2.0], in2_var=[0.5, 3.0], out_var=[2.0, 0.25])


def sub_case(name, cls, args, kw, x_irreps, shared=True):
    tp = getattr(o3, cls)(*args, **kw, shared_weights=shared, internal_weights=shared)
    xs = [tp.irreps_in1.randn(B, -1), tp.irreps_in2.randn(B, -1)]
    if cls == "TensorSquare":
        xs = xs[:1]
    if shared:
        w = tp.weight if tp.weight_numel else torch.zeros(0)
        y = tp(*xs)
    else:
        w = torch.randn(B, tp.weight_numel)
        y = tp(*xs, w)
    cfg = dict(kind=cls, args=list(args), kwargs=kw, shared_weights=shared, irreps_out=str(tp.irreps_out))
    save(name, cfg, xs, w, y)


sub_case("fctp", "FullyConnectedTensorProduct", ["5x0e+3x1o+2x2e", "2x0e+1o+2e", "4x0e+3x1o+2x1e+3x2e"], {}, None)
sub_case("fctp_ext", "FullyConnectedTensorProduct", ["3x0e+2x1o", "0e+1o", "3x0e+2x1o"], {}, None, shared=False)
sub_case("fctp_norm", "FullyConnectedTensorProduct", ["3x0e+2x1o+2x2o", "0e+1o+2e", "3x0o+2x1e+2x2e"], {"irrep_normalization": "norm"}, None)
sub_case("etp", "ElementwiseTensorProduct", ["3x0e+2x1o+1x2e", "1x1o+2x0e+3x1e"], {}, None)
sub_case("etp_filter", "ElementwiseTensorProduct", ["2x0e+3x1o", "3x1o+2x2e"], {"filter_ir_out": ["1o", "2e", "1e"]}, None)
sub_case("ftp", "FullTensorProduct", ["2x0e+2x1o+1x2e", "0e+1o+1e"], {}, None)
sub_case("ftp_filter", "FullTensorProduct", ["2x0e+2x1o", "3x1o"], {"filter_ir_out": ["0e", "2e"]}, None)
sub_case("tsq", "TensorSquare", ["3x0e+2x1o+1x2e"], {}, None)
sub_case("tsq_filter", "TensorSquare", ["2x0e+3x1o"], {"filter_ir_out": ["0e", "1e"]}, None)
sub_case("tsq_out", "TensorSquare", ["3x0e+2x1o+2x2e", "4x0e+2x1e+3x2e"], {}, None)
sub_case("tsq_out_norm", "TensorSquare", ["2x0e+3x1o", "4x0e+2x2e"], {"irrep_normalization": "norm"}, None)


def linear_case(name, irreps_in, irreps_out, shared=True, **kw):
    lin = o3.Linear(irreps_in, irreps_out, shared_weights=shared, internal_weights=shared, **kw)
    x = lin.irreps_in.randn(B, -1)
    if shared:
        with torch.no_grad():
            if lin.bias_numel:
                lin.bias.normal_()
        w, b = lin.weight, (lin.bias if lin.bias_numel else torch.zeros(0))
        y = lin(x)
    else:
        w, b = torch.randn(B, lin.weight_numel), torch.randn(B, lin.bias_numel)
        y = lin(x, w, b)
    cfg = dict(kind="Linear", irreps_in=irreps_in, irreps_out=irreps_out, shared_weights=shared,
               **{k: (v if not isinstance(v, list) else [list(i) if isinstance(i, tuple) else i for i in v]) for k, v in kw.items()})
    save(name, cfg, [x], w, y, bias=b)


linear_case("linear", "5x0e+3x1o+2x1e+2x2e", "3x0e+4x1o+2x2e+1x0o")
linear_case("linear_bias", "5x0e+3x1o+2x0e", "3x0e+4x1o+2x0o", biases=True)
linear_case("linear_instr", "2x0e+3x1o+2x0e", "3x0e+4x1o", instructions=[(0, 0), (1, 1)])
linear_case("linear_path", "2x0e+3x1o+4x0e", "3x0e+4x1o", path_normalization="path")
linear_case("linear_ext", "3x0e+2x1o", "2x0e+3x1o", shared=False)

# -- nonlinearities, norms, radial functions ---------------------------------------------------------
from e3nn import nn as enn
from e3nn.math import soft_one_hot_linspace, soft_unit_step

F = torch.nn.functional
ACTS = {"silu": F.silu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "abs": torch.abs,
        "gelu": F.gelu, "softplus": F.softplus, None: None}


def fcn_case(name, hs, act, **kw):
    net = enn.FullyConnectedNet(hs, ACTS[act], **kw)
    x = torch.randn(B, hs[0])
    ws = [getattr(net, f"layer{i}").weight for i in range(len(hs) - 1)]
    out[f"{name}/config"] = np.array(json.dumps(dict(kind="FullyConnectedNet", hs=hs, act=act, **kw)))
    out[f"{name}/x1"] = x.numpy()
    out[f"{name}/weight"] = torch.cat([w.flatten() for w in ws]).detach().numpy()
    out[f"{name}/out"] = net(x).detach().numpy()


fcn_case("fcn_silu", [4, 16, 8, 3], "silu")
fcn_case("fcn_tanh_var", [3, 10, 2], "tanh", variance_in=2.0, variance_out=0.5, out_act=True)
fcn_case("fcn_linear", [5, 7, 2], None)
fcn_case("fcn_relu", [6, 12, 12, 1], "relu")


def gate_case(name, sc, acts, ga, actg, gd):
    gate = enn.Gate(sc, [ACTS[a] for a in acts], ga, [ACTS[a] for a in actg], gd)
    x = gate.irreps_in.randn(B, -1)
    out[f"{name}/config"] = np.array(json.dumps(dict(kind="Gate", irreps_scalars=sc, act_scalars=acts, irreps_gates=ga,
                                                     act_gates=actg, irreps_gated=gd, irreps_in=str(gate.irreps_in),
                                                     irreps_out=str(gate.irreps_out))))
    out[f"{name}/x1"] = x.numpy()
    out[f"{name}/out"] = gate(x).detach().numpy()


gate_case("gate", "4x0e+2x0o", ["silu", "tanh"], "3x0e", ["sigmoid"], "2x1o+1x2e")
gate_case("gate_odd_gates", "2x0e", ["relu"], "1x0e+2x0o", ["sigmoid", "tanh"], "1x1e+2x1o")
gate_case("gate_scalars_only", "3x0e+1x0o", ["gelu", "abs"], "", [], "")

norm_irreps = "2x0e+3x1o+2x2e+1x0o"
xn = o3.Irreps(norm_irreps).randn(B, -1)
for sq in (False, True):
    out[f"norm_{int(sq)}/config"] = np.array(json.dumps(dict(kind="Norm", irreps_in=norm_irreps, squared=sq)))
    out[f"norm_{int(sq)}/x1"] = xn.numpy()
    out[f"norm_{int(sq)}/out"] = o3.Norm(norm_irreps, squared=sq)(xn).numpy()

na = enn.NormActivation(o3.Irreps("2x0e+3x1o+1x2e"), torch.sigmoid, bias=True)
with torch.no_grad():
    na.biases.normal_()
xna = o3.Irreps("2x0e+3x1o+1x2e").randn(B, -1)
out["normact/config"] = np.array(json.dumps(dict(kind="NormActivation", irreps_in="2x0e+3x1o+1x2e", scalar_nonlinearity="sigmoid", bias=True)))
out["normact/x1"], out["normact/weight"], out["normact/out"] = xna.numpy(), na.biases.detach().numpy(), na(xna).detach().numpy()


def bn_case(name, irreps, **kw):
    bn = enn.BatchNorm(irreps, **kw)
    with torch.no_grad():
        if bn.affine:
            bn.weight.normal_()
            if bn.include_bias and bn.bias.numel():
                bn.bias.normal_()
    x = o3.Irreps(irreps).randn(6, 4, -1) * 2 + 0.5
    bn.train()
    y_train = bn(x)
    out[f"{name}/config"] = np.array(json.dumps(dict(kind="BatchNorm", irreps=irreps, **kw)))
    out[f"{name}/x1"] = x.numpy()
    out[f"{name}/weight"] = bn.weight.detach().numpy() if bn.affine else np.zeros(0)
    out[f"{name}/bias"] = bn.bias.detach().numpy() if (bn.affine and bn.include_bias) else np.zeros(0)
    out[f"{name}/out"] = y_train.detach().numpy()
    if not kw.get("instance"):
        out[f"{name}/running_mean"] = bn.running_mean.numpy()
        out[f"{name}/running_var"] = bn.running_var.numpy()
        bn.eval()
        out[f"{name}/out_eval"] = bn(x).detach().numpy()


bn_case("bn", "3x0e+2x1o+1x2e+2x0o")
bn_case("bn_norm_max", "2x0e+2x1o", normalization="norm", reduce="max", momentum=0.3)
bn_case("bn_instance", "2x0e+2x1o", instance=True)

xr = torch.linspace(-0.3, 2.4, 40)
for basis in ["gaussian", "cosine", "smooth_finite", "fourier", "bessel"]:
    for cutoff in (True, False):
        out[f"radial_{basis}_{int(cutoff)}/out"] = soft_one_hot_linspace(xr, 0.1, 2.0, 7, basis, cutoff).numpy()
out["radial_x"] = xr.numpy()
out["soft_unit_step"] = soft_unit_step(xr).numpy()

# -- zero multiplicities, empty paths and activation lists per block (appended last: the draws above stay) ----
tp_case("uvw_zero_mul", "0x1o+2x0e", "1x1o+0x2e+1x0e", "0x0e+3x1o+2x0e+0x1o",
        [(0, 0, 0, "uvw", True), (1, 0, 1, "uvw", True), (1, 2, 2, "uvw", True), (0, 1, 3, "uvw", True)])
tp_case("u<vw_one_channel", "1x1o+2x0e", "1x1o+2x0e", "2x0e+3x1e",
        [(0, 0, 0, "u<vw", True), (1, 1, 0, "u<vw", True), (0, 0, 1, "u<vw", True)], shared=False)
sub_case("tsq_zero_mul", "TensorSquare", ["0x1o+2x0e+0x2e"], {}, None)
sub_case("fctp_empty_in1", "FullyConnectedTensorProduct", ["0x1o", "2x2o", "1x0e+2x2e"], {}, None)
gate_case("gate_acts_per_block", "2x0e+3x0e", ["tanh", "relu"], "1x0e+2x0e", ["sigmoid", "tanh"], "2x1o+1x1o")
gate_case("gate_zero_mul", "1x0o+0x0e+2x0e", ["tanh", "relu", "silu"], "0x0e+2x0e", ["sigmoid", "sigmoid"], "0x2e+2x1e")

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers_e3nn.npz")
np.savez_compressed(path, **out)
print(f"wrote {len(out)} arrays to {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
