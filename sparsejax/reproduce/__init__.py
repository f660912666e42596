"""Reproduced experiments: the registry of ``experiments/`` scripts, the run / save / report helper they share
(``experiment``), and the HTML report of ``sparsejax reproduce``."""

from sparsejax.reproduce import experiment, registry, report
from sparsejax.reproduce.experiment import Experiment, Trial, experiment_main, save_figure, select_preset
from sparsejax.reproduce.registry import experiment_path, load_experiment
from sparsejax.reproduce.report import environment, verdict, write_report

__all__ = ["experiment", "registry", "report", "Experiment", "Trial", "experiment_main", "save_figure",
           "select_preset", "experiment_path", "load_experiment", "write_report", "environment", "verdict"]
