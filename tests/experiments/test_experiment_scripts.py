"""Every script of experiments/ (and benchmarks/) is written the one way: it declares an ``Experiment`` (the shared
run / save / report helper of ``sparsejax.reproduce.experiment``) with a quick preset, its ``run`` takes a preset,
its imports sit at the top, and it cites papers, not documents outside the repository. Fast: nothing is run."""
import ast
import inspect
import pathlib

import pytest

from sparsejax.reproduce import registry
from sparsejax.reproduce.experiment import Experiment

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPTS = sorted((ROOT / "experiments").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
OPTIONAL = {"sporco", "spams", "sklearn"}          # benchmark references, not dependencies: imported lazily


@pytest.mark.parametrize("name", sorted(registry.EXPERIMENTS))
def test_experiment_declares_the_shared_helper(name):
    mod = registry.load_experiment(name)
    exp = mod.EXPERIMENT
    assert isinstance(exp, Experiment)
    assert exp.name == mod.NAME == name and exp.title == mod.TITLE
    assert exp.presets is mod.PRESETS and "quick" in exp.presets and exp.default in exp.presets
    assert exp.description == mod.__doc__
    assert list(inspect.signature(mod.run).parameters)[:4] == ["quick", "out_dir", "seed", "preset"]
    assert callable(mod.main)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_imports_at_the_top_and_no_outside_citation(path):
    text = path.read_text()
    assert "REFERENCE" not in text
    tree = ast.parse(text)
    top = set(map(id, tree.body))
    nested = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            nested += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] not in OPTIONAL]
    assert not nested, nested
