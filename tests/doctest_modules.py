"""Run the ``Example:`` sections of public modules (shared by the doctest tests of each test package)."""

import doctest
import importlib

import numpy as np


def run_doctests(module_name):
    """``(attempted, failed)`` of the module's doctests, with ``np`` available as in the examples."""
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    return result.attempted, result.failed
