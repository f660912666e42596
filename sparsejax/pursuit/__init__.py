"""Pursuits for the Sparseland model: thresholding, OMP, ISTA/FISTA, ADMM."""
from sparsejax.pursuit.ista import fista, fista_solver, ista, ista_solver, lasso_objective

__all__ = ["ista", "fista", "ista_solver", "fista_solver", "lasso_objective"]
