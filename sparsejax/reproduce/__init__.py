"""The registry of reproduced experiments and the HTML report of ``sparsejax reproduce``."""

from sparsejax.reproduce import registry, report
from sparsejax.reproduce.registry import experiment_path, load_experiment
from sparsejax.reproduce.report import environment, write_report

__all__ = ["registry", "report", "experiment_path", "load_experiment", "write_report", "environment"]
