"""scikit-learn estimators on sparsejax's solvers: change the import, keep the pipeline.

``SparseCoder``, ``DictionaryLearning``, ``MiniBatchDictionaryLearning`` (``sklearn.decomposition``),
``Lasso``, ``LassoLars``, ``OrthogonalMatchingPursuit`` (``sklearn.linear_model``), and the convolutional pair
``ConvSparseCoder`` / ``ConvDictionaryLearning`` (SPORCO's CBPDN and CBPDN dictionary learning as transformers).
Same parameter names, defaults and scaling as scikit-learn; ``components_`` holds the atoms as rows. Needs
scikit-learn (the ``sklearn`` extra).
"""
from sparsejax.sklearn.coder import SparseCoder
from sparsejax.sklearn.conv import ConvDictionaryLearning, ConvSparseCoder
from sparsejax.sklearn.dictlearn import DictionaryLearning, MiniBatchDictionaryLearning
from sparsejax.sklearn.linear import Lasso, LassoLars, OrthogonalMatchingPursuit

__all__ = [
           "ConvDictionaryLearning",
           "ConvSparseCoder",
           "DictionaryLearning",
           "Lasso",
           "LassoLars",
           "MiniBatchDictionaryLearning",
           "OrthogonalMatchingPursuit",
           "SparseCoder",
]
