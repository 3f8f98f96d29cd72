import keras
import numpy as np

from .. import ops as k3ops
from .base import IrrepsLayer, normal_init


@keras.saving.register_keras_serializable(package="kerase3")
class Linear(IrrepsLayer):
    """Equivariant linear map: mixes the channels of each irrep (e3nn's ``o3.Linear``).

    Weights are N(0, 1); the forward pass divides by ``sqrt(fan_in)`` ("element" path
    normalisation), like e3nn, so ``load_weights`` gives e3nn's numbers.

    Args:
        irreps_in: irreps of the input.
        irreps_out: irreps of the output.
        biases: `bool` (bias on every scalar 0e output) or a list of bools per output block.
        instructions: optional list of ``(i_in, i_out)``; by default every pair of equal irreps.
        path_normalization: ``"element"`` or ``"path"``.
        internal_weights: `bool`. If False, call ``layer(x, weight[, bias])`` with weights of
            shape ``(..., weight_numel)`` (per sample) instead of owning them.

    Input shape:
        `(..., irreps_in.dim)`.
    Output shape:
        `(..., irreps_out.dim)`.

    Example:
        >>> lin = Linear("2x0e + 1x1o", "3x0e + 2x1o")
        >>> tuple(lin(np.ones((4, 5))).shape), lin.weight_numel
        ((4, 9), 8)
    """

    def __init__(self, irreps_in, irreps_out, biases=False, instructions=None, path_normalization="element",
                 internal_weights=True, **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in, irreps_out=irreps_out)
        self.biases = biases
        self.instructions = None if instructions is None else [list(i) for i in instructions]
        self.path_normalization = path_normalization
        self.internal_weights = internal_weights
        self.plan = k3ops.LinearPlan(self.irreps_in, self.irreps_out, instructions, biases, path_normalization)

    @property
    def weight_numel(self):
        return self.plan.weight_numel

    @property
    def bias_numel(self):
        return self.plan.bias_numel

    def build(self, input_shape=None):
        if self.internal_weights:
            self.weight = self.add_weight(name="weight", shape=(self.plan.weight_numel,), initializer=normal_init())
            self.bias = None
            if self.plan.bias_numel:
                self.bias = self.add_weight(name="bias", shape=(self.plan.bias_numel,), initializer="zeros")

    def call(self, x, weight=None, bias=None):
        if self.internal_weights:
            weight, bias = self.weight, self.bias
        shared = self.internal_weights
        return k3ops.linear(self.plan, x, weight, bias if self.plan.bias_numel else None, shared_weights=shared)

    def call_blocks(self, blocks, like=None):
        """The layer on features split into ir_mul blocks (`kerase3.ops.linear_blocks`): one
        ``[Z, 2l+1, mul]`` per block of ``irreps_in`` -> the same for ``irreps_out``. Internal
        weights only."""
        if not self.internal_weights:
            raise ValueError(f"Linear.call_blocks: needs internal weights ({self.irreps_in} -> {self.irreps_out})")
        return k3ops.linear_blocks(self.plan, blocks, self.weight, self.bias if self.plan.bias_numel else None,
                                   shared_weights=True, like=like)

    def fit_least_squares(self, x, y, mask=None, ridge=1e-8):
        """Set the weights to the (ridge) least-squares solution of ``layer(x) ~ y`` (numpy, float64).

        The map is linear in its weights and equivariant, so the fit splits into one small
        problem per output irrep copy (rows: samples x components): exact in one step where the
        features determine the targets, e.g. a readout on top of fixed features.

        Args:
            x: ``(S, irreps_in.dim)``.
            y: ``(S, irreps_out.dim)``.
            mask: optional ``(S, irreps_out.num_irreps)``: which samples constrain each output copy.
            ridge: Tikhonov weight, relative to the mean diagonal of each normal matrix.

        Returns:
            the RMS residual of the constrained entries.
        """
        name = type(self).__name__
        if not self.internal_weights or self.plan.bias_numel:
            raise ValueError(f"{name}.fit_least_squares: needs internal weights and no biases ({self.irreps_in} -> "
                             f"{self.irreps_out})")
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.ndim != 2 or y.ndim != 2 or x.shape[1] != self.irreps_in.dim or y.shape != (len(x), self.irreps_out.dim):
            raise ValueError(f"{name}.fit_least_squares: x must be (S, {self.irreps_in.dim}) and y (S, {self.irreps_out.dim}) "
                             f"for {self.irreps_in} -> {self.irreps_out}. Received: x={x.shape}, y={y.shape}")
        if not self.built:
            self.build(x.shape)
        n = len(x)
        mask = np.ones((n, self.irreps_out.num_irreps), bool) if mask is None else np.asarray(mask, bool)
        s_in, s_out = self.irreps_in.slices(), self.irreps_out.slices()
        copy0 = np.cumsum([0] + [mul for mul, _ in self.irreps_out])
        weight = np.asarray(keras.ops.convert_to_numpy(self.weight), np.float64).copy()
        offsets = np.cumsum([0] + [a * b for _, _, (a, b), _ in self.plan.instructions])
        sq, count = 0.0, 0
        for i_out, (mul_out, ir) in enumerate(self.irreps_out):
            ins = [(k, i_in, alpha) for k, (i_in, j_out, _, alpha) in enumerate(self.plan.instructions) if j_out == i_out]
            yb = y[:, s_out[i_out]].reshape(n, mul_out, ir.dim)
            if not ins:
                continue
            # columns: (instruction, input copy); rows: (sample, component)
            A = np.concatenate([alpha * x[:, s_in[i_in]].reshape(n, -1, ir.dim).transpose(0, 2, 1).reshape(n * ir.dim, -1)
                                for _, i_in, alpha in ins], axis=1)
            for u in range(mul_out):
                rows = np.repeat(mask[:, copy0[i_out] + u], ir.dim)
                Au, bu = A[rows], yb[:, u, :].reshape(-1)[rows]
                if not len(bu):
                    continue
                G = Au.T @ Au
                lam = ridge * max(np.trace(G) / len(G), 1e-30)
                w = np.linalg.solve(G + lam * np.eye(len(G)), Au.T @ bu)
                sq += float(np.sum((Au @ w - bu) ** 2))
                count += len(bu)
                start = 0
                for k, i_in, _ in ins:
                    mul_in = self.irreps_in[i_in].mul
                    W = weight[offsets[k]:offsets[k + 1]].reshape(mul_in, mul_out)
                    W[:, u] = w[start:start + mul_in]
                    weight[offsets[k]:offsets[k + 1]] = W.reshape(-1)
                    start += mul_in
        self.weight.assign(weight.astype(self.weight.dtype))
        return float(np.sqrt(sq / max(count, 1)))

    def compute_output_shape(self, input_shape, *args):
        return tuple(input_shape[:-1]) + (self.plan.irreps_out.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            biases=self.biases,
            instructions=self.instructions,
            path_normalization=self.path_normalization,
            internal_weights=self.internal_weights,
        )
        return config

    def __repr__(self):
        return f"Linear({self.irreps_in} -> {self.irreps_out} | {self.weight_numel} weights)"
