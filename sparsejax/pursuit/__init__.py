"""Pursuits for the Sparseland model: thresholding, OMP, ISTA/FISTA, ADMM."""
from sparsejax.pursuit.ista import fista, fista_solver, ista, ista_solver, lasso_objective
from sparsejax.pursuit.omp import OMPState, omp, omp_batch
from sparsejax.pursuit.thresholding import thresholding

__all__ = ["ista", "fista", "ista_solver", "fista_solver", "lasso_objective", "omp", "omp_batch", "OMPState",
           "thresholding"]
