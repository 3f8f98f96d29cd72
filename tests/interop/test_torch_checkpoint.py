"""torch.save checkpoints read without torch (fixture made by tests/reference/make_torch_checkpoint_fixture.py),
and anything outside the allow-list refused before it is imported."""

import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from kerase3.interop.torch_checkpoint import read_torch_checkpoint

REF = os.path.join(os.path.dirname(__file__), "..", "reference")


def test_tensors_views_and_config_come_back():
    ckpt = read_torch_checkpoint(os.path.join(REF, "torch_checkpoint.pth"))
    want = np.load(os.path.join(REF, "torch_checkpoint.npz"))
    state = ckpt["model_state_dict"]
    assert list(state) == ["weight", "double", "transposed", "view", "ints", "mask", "scalar", "empty"]
    for k in want.files:
        assert state[k].dtype == want[k].dtype and state[k].shape == want[k].shape, k
        np.testing.assert_array_equal(state[k], want[k])
    np.testing.assert_array_equal(state["transposed"], want["double"].T)
    cfg = ckpt["config"]
    assert cfg["cutoff"] == 5.0 and cfg["irreps"] == "8x0e+4x1e" and cfg["device"] == "cpu" and ckpt["epoch"] == 3
    np.testing.assert_array_equal(cfg["shifts"], [1.5, -2.0])


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_other_classes_are_refused_by_name(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"x": _Evil()}, protocol=2))
        z.writestr("archive/byteorder", "little")
    with pytest.raises(ValueError, match=r"asks for (posix|os|nt)\.system.*refused"):
        read_torch_checkpoint(path)
    (tmp_path / "plain.pth").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ValueError, match="not a torch zip checkpoint"):
        read_torch_checkpoint(tmp_path / "plain.pth")


def test_the_pretrained_sevennet_checkpoint():
    """sevenn's wheel carries SevenNet-0: read from an installed sevenn, or from the wheel that
    ``kerase3.interop.sevenn.download`` fetches (``pip download --no-deps``); skipped offline."""
    import io

    from kerase3.interop import sevenn

    try:
        raw = sevenn.find_checkpoint("7net-0")
    except ValueError:
        try:
            sevenn.download()
        except Exception as e:  # offline
            pytest.skip(f"no sevenn checkpoint here and none could be fetched: {e}")
        raw = sevenn.find_checkpoint("7net-0")
    ckpt = read_torch_checkpoint(io.BytesIO(raw))
    assert ckpt["config"]["cutoff"] == 5.0 and ckpt["config"]["num_convolution_layer"] == 5
    assert len(ckpt["model_state_dict"]) == 121
