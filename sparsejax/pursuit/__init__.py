"""Pursuits for the Sparseland model: thresholding, OMP, ISTA/FISTA, ADMM, batched Lasso."""
from sparsejax.pursuit.admm import admm_bpdn, admm_bpdn_solver, admm_constrained, admm_constrained_solver
from sparsejax.pursuit.csc import CBPDNState, cbpdn_admm, cbpdn_objective, cbpdn_solver, conv_thresholding
from sparsejax.pursuit.ista import fista, fista_solver, ista, ista_solver, lasso_objective
from sparsejax.pursuit.lasso_batch import duality_gap, lasso_batch
from sparsejax.pursuit.omp import OMPState, omp, omp_batch
from sparsejax.pursuit.thresholding import thresholding

__all__ = ["ista", "fista", "ista_solver", "fista_solver", "lasso_objective", "omp", "omp_batch", "OMPState",
           "thresholding", "admm_bpdn", "admm_constrained", "admm_bpdn_solver", "admm_constrained_solver",
           "lasso_batch", "duality_gap", "cbpdn_admm", "cbpdn_solver", "cbpdn_objective", "conv_thresholding",
           "CBPDNState"]
