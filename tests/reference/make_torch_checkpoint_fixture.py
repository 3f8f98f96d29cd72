"""Fixture of tests/interop/test_torch_checkpoint.py: a small torch.save checkpoint (tensors of
several dtypes, views with offsets and strides, a config with numpy arrays and a torch.device)
and the same values as .npz. Needs torch:

    python tests/reference/make_torch_checkpoint_fixture.py
"""

import collections
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 8, generator=g, dtype=torch.float64)
    state = collections.OrderedDict(
        weight=torch.randn(4, 3, generator=g),
        double=base,
        transposed=base.t(),  # strides (1, 8)
        view=base[2:5, 1::2],  # an offset and a step
        ints=torch.arange(7, dtype=torch.int64),
        mask=torch.tensor([True, False, True]),
        scalar=torch.tensor(2.5),
        empty=torch.zeros(0, 3),
    )
    config = dict(cutoff=5.0, channel=8, irreps="8x0e+4x1e", shifts=np.array([1.5, -2.0]), device=torch.device("cpu"),
                  layers=[64, 64], flags=(True, None))
    torch.save(dict(model_state_dict=state, config=config, epoch=3), os.path.join(HERE, "torch_checkpoint.pth"))
    np.savez(os.path.join(HERE, "torch_checkpoint.npz"), **{k: v.numpy() for k, v in state.items()})


if __name__ == "__main__":
    main()
