"""sparsejax: sparse modeling (Sparseland, CSC, ML-CSC) as pure, jittable JAX functions."""
from sparsejax import dictionary, shrink
from sparsejax.dictionary import (babel, gram, mutual_coherence, normalize_atoms, overcomplete_dct,
                                  overcomplete_dct_2d, random_gaussian)
from sparsejax.operators import Dense, LinearOperator, as_operator, power_iteration
from sparsejax.pursuit import (admm_bpdn, admm_constrained, duality_gap, fista, fista_solver, ista, ista_solver,
                               lasso_batch, lasso_objective, omp, omp_batch, thresholding)
from sparsejax.solve import Solution, Solver, iterate

__version__ = "0.1.0"
