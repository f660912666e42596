"""Registry of reproducible experiments: name -> module file, relative to the repository root.

Each module defines ``run(quick: bool, out_dir: Path, seed: int = 0) -> dict`` (see ``sparsejax.reproduce.report``).
Add new experiments here.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

EXPERIMENTS: dict[str, str] = {
    "bp_stability": "experiments/bp_stability.py",
    "omp_success": "experiments/omp_success.py",
    "csc_image": "experiments/csc_image.py",
    "holistic_vs_projection": "experiments/holistic_vs_projection.py",
    "mnist_classification": "experiments/mnist_classification.py",
    "lista_speedup": "experiments/lista_speedup.py",
    "layered_vs_bp": "experiments/layered_vs_bp.py",
    "ml_convergence": "experiments/ml_convergence.py",
    "mlcsc_atoms": "experiments/mlcsc_atoms.py",
    "adversarial": "experiments/adversarial.py",
}

REPO_ROOT = Path(__file__).resolve().parents[2]


def experiment_path(name: str) -> Path:
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; available: {', '.join(sorted(EXPERIMENTS))}")
    return REPO_ROOT / EXPERIMENTS[name]


def load_experiment(name: str):
    """Import the experiment module by file path (the experiments/ folder is not part of the package)."""
    path = experiment_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"experiment {name!r} expects {path}, which is missing: `sparsejax reproduce` needs the source "
            "checkout (pip install -e .)")
    spec = importlib.util.spec_from_file_location(f"sparsejax_experiments.{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not callable(getattr(mod, "run", None)):
        raise AttributeError(f"{path} defines no run(quick, out_dir, seed) function")
    return mod
