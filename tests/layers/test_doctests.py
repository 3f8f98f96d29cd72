import pytest

from ..doctest_modules import modules_with_examples, run_doctests


@pytest.mark.parametrize("module", modules_with_examples("kerase3.layers"))
def test_layer_examples_run(module):
    attempted, failed = run_doctests(module)
    assert attempted > 0 and failed == 0
