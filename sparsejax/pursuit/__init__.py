"""Pursuits for the Sparseland and CSC models: thresholding, OMP and Batch-OMP, ISTA / FISTA, ADMM, the batched
Lasso (guess-and-verify, LARS homotopy, active set), convolutional BPDN, and the batched front door ``encode``.
"""

from sparsejax.pursuit import (  # the modules named like their function (omp, ista, ...) are shadowed by it
    admm,
    csc,
    joint,
    l1ball,
    lam,
    path,
)
from sparsejax.pursuit.admm import (
    admm_bpdn,
    admm_bpdn_solver,
    admm_constrained,
    admm_constrained_solver,
    bpdn_admm,
    bpdn_admm_solver,
    bpdn_constrained_admm,
    bpdn_constrained_admm_solver,
)
from sparsejax.pursuit.csc import (
    CBPDNState,
    cbpdn_admm,
    cbpdn_objective,
    cbpdn_solver,
    cbpdn_admm_solver,
    RhoBalancing,
    conv_thresholding,
)
from sparsejax.pursuit.elastic_net import elastic_net, elastic_net_objective
from sparsejax.pursuit.encode import METHODS, encode
from sparsejax.pursuit.ista import (
    fista,
    fista_prox_solver,
    fista_solver,
    ista,
    ista_solver,
    lasso_objective,
)
from sparsejax.pursuit.lasso_batch import BatchState, duality_gap, lasso_batch
from sparsejax.pursuit.joint import bpdn_joint, conv_bpdn_joint, joint_objective
from sparsejax.pursuit.l1ball import bpdn_proj_l1
from sparsejax.pursuit.lam import default_lam
from sparsejax.pursuit.omp import OMPState, check_gram_matches, least_squares_path, omp, omp_batch, omp_gram, omp_solver
from sparsejax.pursuit.path import LarsPath, LassoPath, lam_grid, lars_path, lasso_path
from sparsejax.pursuit.thresholding import thresholding

__all__ = ['admm', 'csc', 'encode', 'ista', 'lasso_batch', 'omp', 'thresholding', 'bpdn_admm',
           'bpdn_constrained_admm', 'bpdn_admm_solver', 'bpdn_constrained_admm_solver',
           # deprecated aliases of the four above
           'admm_bpdn', 'admm_constrained', 'admm_bpdn_solver', 'admm_constrained_solver',
           'cbpdn_admm', 'cbpdn_solver', 'cbpdn_admm_solver', 'RhoBalancing', 'cbpdn_objective', 'conv_thresholding', 'CBPDNState', 'METHODS', 'fista',
           'ista_solver', 'fista_solver', 'lasso_objective', 'duality_gap', 'BatchState', 'omp_batch', 'omp_solver',
           'OMPState',
           # solver forms of the peers (scikit-learn, SPORCO)
           'joint', 'l1ball', 'lam', 'path', 'elastic_net', 'elastic_net_objective', 'fista_prox_solver',
           'bpdn_joint', 'conv_bpdn_joint', 'joint_objective', 'bpdn_proj_l1', 'default_lam', 'omp_gram',
           'check_gram_matches', 'least_squares_path', 'lars_path', 'lasso_path', 'lam_grid', 'LarsPath',
           'LassoPath']
