"""The documentation site covers the package: every public module has an API page, every example and every
registered experiment has its place (the site itself is built with warnings as errors by ``.ci/run``, which also
checks that every name of ``sparsejax.__all__`` is in the built index)."""
import pathlib
import pkgutil
import re

import sparsejax
from sparsejax.reproduce.registry import EXPERIMENTS

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _public_modules():
    for info in pkgutil.walk_packages(sparsejax.__path__, "sparsejax."):
        parts = info.name.split(".")
        if not any(p.startswith("_") for p in parts) and parts[1] != "experiments":
            yield info.name


def test_every_public_module_has_an_api_section():
    documented = set()
    for page in (DOCS / "api").glob("*.rst"):
        documented |= set(re.findall(r"^\.\. automodule:: (\S+)", page.read_text(), flags=re.M))
    missing = sorted(set(_public_modules()) - documented)
    assert not missing, f"modules without an API section in docs/api/: {missing}"


def test_every_api_page_is_in_the_table_of_contents():
    index = (DOCS / "index.md").read_text()
    for page in (DOCS / "api").glob("*.rst"):
        assert f"api/{page.stem}" in index, page.name


def test_every_example_and_experiment_has_its_place():
    examples = (DOCS / "examples.md").read_text()
    for script in (ROOT / "examples").glob("*.py"):
        assert f"../examples/{script.name}" in examples, script.name
    experiments = (DOCS / "experiments.md").read_text()
    for name in EXPERIMENTS:
        assert f"`{name}`" in experiments, name
