"""Neural networks built from pursuits: the unfolded Flax networks (LISTA, CNN = layered thresholding,
ML-ISTA, ML-FISTA, LBP, ML-LISTA).
"""

from sparsejax.nn import attacks  # noqa: F401 (FGSM / PGD)
from sparsejax.nn import unfolded
from sparsejax.nn.unfolded import (
    CNN,
    LISTA,
    MNIST_ARCH,
    NETWORKS,
    LBPNet,
    MLFISTANet,
    MLISTANet,
    MLLISTANet,
    check_arch,
    conv_layers,
    count_params,
    layer_shapes,
    lista_params,
    threshold_pass,
    unfolded_lbp,
    unfolded_ml_ista,
)

__all__ = [
    "attacks",
    "unfolded",
    "MNIST_ARCH",
    "check_arch",
    "layer_shapes",
    "conv_layers",
    "threshold_pass",
    "unfolded_ml_ista",
    "unfolded_lbp",
    "CNN",
    "MLISTANet",
    "MLFISTANet",
    "LBPNet",
    "MLLISTANet",
    "LISTA",
    "lista_params",
    "count_params",
    "NETWORKS",
]
