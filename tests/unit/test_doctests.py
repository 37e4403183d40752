"""Every example in the package's docstrings runs (an example that cannot run is not written as one)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import grokvideo

# walk_packages, not iter_modules: the examples of grokvideo.cli's modules run too.
MODULES = sorted(m.name for m in pkgutil.walk_packages(grokvideo.__path__, prefix="grokvideo."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_no_example_is_skipped() -> None:
    skipped = [
        f"{name}: {example.source.strip()}"
        for name in MODULES
        for test in doctest.DocTestFinder().find(importlib.import_module(name))
        for example in test.examples
        if example.options.get(doctest.SKIP)
    ]
    assert skipped == []
