import keras
from keras import ops

from .base import IrrepsLayer, irreps_arg


@keras.saving.register_keras_serializable(package="kerase3")
class Extract(IrrepsLayer):
    """Pick blocks of the input into several outputs (e3nn's ``nn.Extract``).

    Args:
        irreps_in: irreps of the input.
        irreps_outs: list of irreps, one per output.
        instructions: list (one per output) of tuples of block indices into ``irreps_in``;
            the output's blocks must equal those blocks.

    Input shape:
        `(..., irreps_in.dim)`.
    Output shape:
        a list of `(..., irreps_outs[i].dim)`.

    Example:
        >>> outs = Extract("2x0e + 1o", ["1o", "2x0e"], [(1,), (0,)])(np.ones((4, 5)))
        >>> [tuple(o.shape) for o in outs]
        [(4, 3), (4, 2)]
    """

    def __init__(self, irreps_in, irreps_outs, instructions, **kwargs):
        super().__init__(**kwargs)
        self.set_irreps(irreps_in=irreps_in)
        self.irreps_outs = [irreps_arg(i, "Extract", "irreps_outs") for i in irreps_outs]
        self.instructions = [list(i) for i in instructions]
        if len(self.instructions) != len(self.irreps_outs):
            raise ValueError(f"Extract: one instruction per output is needed. Received: instructions={instructions!r}")
        for irreps_out, ins in zip(self.irreps_outs, self.instructions):
            picked = [self.irreps_in[i] if 0 <= i < len(self.irreps_in) else None for i in ins]
            if len(irreps_out) != len(ins) or any(p is None or p != m for p, m in zip(picked, irreps_out)):
                raise ValueError(
                    f"Extract: blocks {ins} of {self.irreps_in} do not give {irreps_out}. Received: instructions={instructions!r}"
                )

    def call(self, x):
        self.check_input(x, self.irreps_in)
        slices = self.irreps_in.slices()
        outs = []
        for ins in self.instructions:
            parts = [x[..., slices[i].start : slices[i].stop] for i in ins]
            outs.append(x[..., :0] if not parts else (parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)))
        return outs

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape[:-1]) + (i.dim,) for i in self.irreps_outs]

    def get_config(self):
        config = super().get_config()
        config.update(irreps_outs=[str(i) for i in self.irreps_outs], instructions=self.instructions)
        return config

    def __repr__(self):
        return f"Extract({self.irreps_in} -> {' | '.join(str(i) for i in self.irreps_outs)})"
