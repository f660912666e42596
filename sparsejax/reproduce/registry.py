"""Registry of reproducible experiments: name -> script, relative to the repository root.

The scripts live in ``experiments/`` of the repository; the wheel (and an editable install) installs that folder as
the subpackage ``sparsejax.experiments``, so ``sparsejax reproduce`` works from an installed wheel too.

Each script in ``experiments/`` declares an ``EXPERIMENT`` (``sparsejax.reproduce.experiment.Experiment``: name,
title, description, ``PRESETS``) and defines ``run(quick, out_dir, seed=0, preset=None) -> dict`` returning
``EXPERIMENT.result(...)``. Add new experiments here.
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

__all__ = ["EXPERIMENTS", "REPO_ROOT", "experiment_path", "load_experiment"]

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
    "mca_separation": "experiments/mca_separation.py",
    "ksvd_denoising": "experiments/ksvd_denoising.py",
}

REPO_ROOT = Path(__file__).resolve().parents[2]


def experiment_path(name: str) -> Path:
    """The script of a registered experiment.

    Args:
      name: a key of ``EXPERIMENTS``.

    Returns:
      The absolute path of ``experiments/<name>.py``: in the source checkout when there is one, else in the
      installed ``sparsejax.experiments`` package.

    Raises:
      KeyError naming the available experiments for an unknown ``name``.

    Example:
      >>> from sparsejax.reproduce.registry import experiment_path
      >>> experiment_path("bp_stability").name
      'bp_stability.py'
    """
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; available: {', '.join(sorted(EXPERIMENTS))}")
    path = REPO_ROOT / EXPERIMENTS[name]
    if path.is_file():
        return path
    try:
        package = importlib.import_module("sparsejax.experiments")
    except ImportError:
        return path
    return Path(package.__file__).parent / Path(EXPERIMENTS[name]).name


def load_experiment(name: str):
    """Import a registered experiment's script by file path (the checkout's ``experiments/`` or the installed
    ``sparsejax.experiments``).

    Args:
      name: a key of ``EXPERIMENTS``.

    Returns:
      The module; it defines ``run(quick, out_dir, seed=0, preset=None)``, ``EXPERIMENT`` and ``PRESETS``.

    Raises:
      KeyError for an unknown name; FileNotFoundError when the script is missing from both places;
      AttributeError when it defines no ``run``.

    Example:
      >>> from sparsejax.reproduce.registry import load_experiment
      >>> mod = load_experiment("bp_stability")
      >>> mod.EXPERIMENT.name, sorted(mod.PRESETS)
      ('bp_stability', ['full', 'quick'])
    """
    path = experiment_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"experiment {name!r} expects {path}, which is missing: reinstall sparsejax (the wheel carries the "
            "experiments as sparsejax.experiments)")
    spec = importlib.util.spec_from_file_location(f"sparsejax_experiments.{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not callable(getattr(mod, "run", None)):
        raise AttributeError(f"{path} defines no run(quick, out_dir, seed) function")
    return mod
