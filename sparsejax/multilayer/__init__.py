"""The multi-layer CSC model (ML-CSC): the model (chains of layers, effective dictionaries, molecules), its
pursuits (layered thresholding, ML-ISTA / ML-FISTA, layered BP, holistic and projection pursuit) and signals that
obey it.
"""

from sparsejax.multilayer import architecture, holistic, layered, model, result, signals
from sparsejax.multilayer.holistic import (
    HolisticResult,
    HolisticState,
    SubspaceState,
    holistic_oracle,
    holistic_oracle_mse,
    holistic_pursuit,
    projection_oracle,
    projection_oracle_mse,
    projection_pursuit_dense,
    subspace_bpdn,
    subspace_bpdn_solver,
)
from sparsejax.multilayer.layered import (
    MLFISTAState,
    MLISTAState,
    back_project,
    check_layers,
    check_steps,
    layer_prox_grad_step,
    layered_thresholding,
    layered_thresholding_codes,
    ml_bp_objective,
    ml_ista,
    ml_ista_solver,
    ml_ista_step,
    objective_weights,
)
from sparsejax.multilayer.layered_bp import (
    LayeredSolution,
    ProjectionSolution,
    layered_bp,
    layered_bp_unfolded,
    projection_pursuit,
)
from sparsejax.multilayer.model import (
    Chain,
    MLModel,
    effective_dictionary,
    molecules,
    synthesize,
    to_dense,
)
from sparsejax.multilayer.result import MLSolution
from sparsejax.multilayer.signals import (
    MultiLayerSignal,
    TwoLayerSignal,
    conv_multilayer_signal,
    dense_multilayer_signal,
    null_space,
    random_conv_layers,
    random_dense_layers,
    two_layer_dense_signal,
)

__all__ = ['holistic', 'layered', 'layered_bp', 'model', 'result', 'signals', 'MLSolution', 'SubspaceState',
           'HolisticState', 'HolisticResult', 'subspace_bpdn', 'subspace_bpdn_solver', 'projection_pursuit_dense',
           'holistic_pursuit', 'projection_oracle', 'holistic_oracle', 'projection_oracle_mse',
           'holistic_oracle_mse', 'layered_thresholding', 'layered_thresholding_codes', 'ml_ista', 'ml_ista_solver',
           'ml_bp_objective', 'MLISTAState', 'MLFISTAState', 'ml_ista_step', 'objective_weights', 'check_steps',
           'layer_prox_grad_step', 'back_project', 'check_layers', 'LayeredSolution', 'ProjectionSolution',
           'layered_bp_unfolded', 'projection_pursuit', 'Chain', 'effective_dictionary', 'to_dense', 'molecules',
           'synthesize', 'MLModel', 'TwoLayerSignal', 'MultiLayerSignal', 'two_layer_dense_signal', 'null_space',
           'random_conv_layers', 'random_dense_layers', 'conv_multilayer_signal', 'dense_multilayer_signal']

from sparsejax.multilayer.architecture import MNIST_ML_CSC, MNIST_ML_ISTA, Architecture, Layer, LayerShape  # noqa: E402

__all__ += ['architecture', 'Architecture', 'Layer', 'LayerShape', 'MNIST_ML_ISTA', 'MNIST_ML_CSC']
