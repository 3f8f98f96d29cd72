import pytest

from .doctest_modules import modules_with_examples, run_doctests

OWN_TESTS = ("kerase3.layers", "kerase3.ops", "kerase3.backend", "kerase3.o3")  # their packages' tests run these


@pytest.mark.parametrize("module", modules_with_examples("kerase3", exclude=OWN_TESTS))
def test_examples_run(module):
    attempted, failed = run_doctests(module)
    assert attempted > 0 and failed == 0


def test_every_module_with_an_example_is_run():
    everything = modules_with_examples("kerase3")
    covered = set(modules_with_examples("kerase3", exclude=OWN_TESTS)) | set(modules_with_examples(*OWN_TESTS))
    assert covered == set(everything) and len(everything) > 30
