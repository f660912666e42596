"""sparsejax: sparse modeling (Sparseland, CSC, ML-CSC) as pure, jittable JAX functions."""
from sparsejax import conv, conv_norms, dictionary, shrink
from sparsejax.conv import BatchConv, Conv, conv_adjoint, conv_code_shape, conv_synthesis, normalize_filters
from sparsejax.conv_norms import (conv_coherence, conv_cross_correlation, patch_l2_inf, stripe_counts,
                                  stripe_l0_inf, stripe_l2_inf)
from sparsejax.dictionary import (babel, gram, mutual_coherence, normalize_atoms, overcomplete_dct,
                                  overcomplete_dct_2d, random_gaussian)
from sparsejax.operators import Dense, LinearOperator, as_operator, power_iteration
from sparsejax.pursuit import (admm_bpdn, cbpdn_admm, cbpdn_objective, conv_thresholding, admm_constrained, duality_gap, fista, fista_solver, ista, ista_solver,
                               lasso_batch, lasso_objective, omp, omp_batch, thresholding)
from sparsejax.encode import encode
from sparsejax.layered import layered_thresholding, ml_bp_objective, ml_ista
from sparsejax.mlmodel import Chain, MLModel, effective_dictionary, molecules, synthesize, to_dense
from sparsejax.layered_bp import LayeredSolution, ProjectionSolution, layered_bp, layered_bp_unfolded, projection_pursuit
from sparsejax.differentiate import fixed_point_implicit, lasso_codes
from sparsejax.training import LoopResult, run_loop
from sparsejax.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from sparsejax.solve import Solution, Solver, iterate

__version__ = "0.1.0"
