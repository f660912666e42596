"""The multi-layer (ML-CSC) model: effective dictionaries as operator chains, molecules, synthesis.

Model: x = D_1 G_1, G_1 = D_2 G_2, ..., G_{K-1} = D_K G_K, with ``layers = (D_1, ..., D_K)`` a tuple of
``Dense`` or ``Conv`` operators whose shapes chain (``layers[i].signal_shape == layers[i-1].code_shape``,
i.e. layer i treats G_{i-1} as an m_{i-1}-channel signal; strides and channels as in a CNN).

* The effective dictionary D^{(i,j)} = D_i D_{i+1} ... D_j (1-based, as in the paper) is a ``Chain``:
  apply = D_i(D_{i+1}(... D_j(G))), adjoint = D_j^T(... D_i^T(x)); it is never formed densely, and it is a
  ``LinearOperator`` pytree, so ``ista``/``fista`` and every pursuit accept it.
* The atoms of D^{(i,j)} are the "molecules". For convolutional layers they are the effective filters:
  with strides s and filter sizes k the molecule of D^{(i,j)} has size E_i, where E_j = k_j and
  E_l = s_l (E_{l+1} - 1) + k_l going down to l = i. Example, the MNIST classification net of Sulam, Aberdam,
  Beck, Elad (IEEE TPAMI 2020; 6x6 stride 2, 6x6 stride 2, 4x4 stride 1): molecules 6x6 -> 16x16 -> 28x28
  (the whole image).

References: V. Papyan, Y. Romano, M. Elad, "Convolutional neural networks analyzed via convolutional sparse coding",
JMLR 18, 2017 (the model); J. Sulam, V. Papyan, Y. Romano, M. Elad, "Multilayer convolutional sparse
modeling: pursuit and dictionary learning", IEEE TSP 66(15), 2018 (effective dictionaries and molecules).
"""
from __future__ import annotations

import math
from typing import Tuple

import jax
import jax.numpy as jnp

from sparsejax import _validate as V
from sparsejax.conv.operator import Conv
from sparsejax.multilayer._checks import check_layers
from sparsejax.operators import Dense, LinearOperator

__all__ = ["back_project", "Chain", "effective_dictionary", "to_dense", "molecules", "synthesize", "MLModel"]


def back_project(layers, GK) -> Tuple[jax.Array, ...]:
    """(Gh_1, ..., Gh_K) with Gh_K = G_K and Gh_i = D_{i+1} Gh_{i+1} = D^{(i+1,K)} G_K: the codes of every layer
    that the deepest code G_K implies (used by ML-ISTA and projection pursuit).

    Args:
      layers: tuple (D_1, ..., D_K) of chaining operators (not checked: called inside traced code).
      GK: the deepest code, shape ``layers[-1].code_shape``.

    Returns:
      The tuple (Gh_1, ..., Gh_K).

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.eye(2)), sj.Dense(2.0 * jnp.eye(2)))
      >>> [G.tolist() for G in sj.multilayer.back_project(layers, jnp.array([1.0, 0.0]))]
      [[2.0, 0.0], [1.0, 0.0]]
    """
    K = len(layers)
    Gh = [None] * K
    Gh[K - 1] = GK
    for i in range(K - 2, -1, -1):
        Gh[i] = layers[i + 1].apply(Gh[i + 1])
    return tuple(Gh)


@jax.tree_util.register_pytree_node_class
class Chain(LinearOperator):
    """The product D_i D_{i+1} ... D_j of chaining operators, applied factor by factor.

    ``apply(G) = D_i(D_{i+1}(... D_j(G)))``, ``adjoint(x) = D_j^T(... D_i^T(x))``; ``lipschitz()`` is
    ||D_i ... D_j||_2^2 by power iteration on the chained normal map (from below, see
    ``operators.power_iteration``). A pytree whose leaves are the factors' arrays.

    Args:
      ops: a tuple (D_i, ..., D_j) of LinearOperators with ``ops[t].signal_shape == ops[t-1].code_shape``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> C = sj.Chain((sj.Dense(jnp.ones((3, 2))), sj.Dense(jnp.eye(2))))
      >>> C.signal_shape, C.code_shape, C.apply(jnp.array([1.0, 2.0])).tolist()
      ((3,), (2,), [3.0, 3.0, 3.0])
    """

    def __init__(self, ops):
        self.ops = check_layers(ops)

    @property
    def code_shape(self):
        """The code shape of the last factor D_j (G_j).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Chain((sj.Dense(jnp.ones((3, 2))), sj.Dense(jnp.ones((2, 5))))).code_shape
          (5,)
        """
        return tuple(self.ops[-1].code_shape)

    @property
    def signal_shape(self):
        """The signal shape of the first factor D_i (G_{i-1}).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Chain((sj.Dense(jnp.ones((3, 2))), sj.Dense(jnp.ones((2, 5))))).signal_shape
          (3,)
        """
        return tuple(self.ops[0].signal_shape)

    @property
    def dtype(self):
        """The dtype that holds every factor.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.Chain((sj.Dense(jnp.ones((3, 2))),)).dtype
          dtype('float32')
        """
        return jnp.result_type(*[op.dtype for op in self.ops])

    def apply(self, codes):
        """Synthesis D_i D_{i+1} ... D_j G: the factors applied last to first.

        Args:
          codes: G, shape ``code_shape``.

        Returns:
          The signal, shape ``signal_shape``.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> C = sj.Chain((sj.Dense(jnp.array([[1.0, 1.0]])), sj.Dense(jnp.array([[1.0], [2.0]]))))
          >>> C.apply(jnp.array([3.0])).tolist()
          [9.0]
        """
        for op in reversed(self.ops):
            codes = op.apply(codes)
        return codes

    def adjoint(self, signal):
        """The adjoint D_j^T ... D_{i+1}^T D_i^T x: the factors' adjoints applied first to last.

        Args:
          signal: x, shape ``signal_shape``.

        Returns:
          The code-space vector, shape ``code_shape``.

        Example: <C G, x> = <G, C^T x>.
          >>> import jax
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(0), 4)
          >>> C = sj.Chain((sj.Dense(jax.random.normal(k1, (4, 3))), sj.Dense(jax.random.normal(k2, (3, 5)))))
          >>> G, x = jax.random.normal(k3, (5,)), jax.random.normal(k4, (4,))
          >>> bool(jnp.allclose(jnp.vdot(C.apply(G), x), jnp.vdot(G, C.adjoint(x)), rtol=1e-5))
          True
        """
        for op in self.ops:
            signal = op.adjoint(signal)
        return signal

    def tree_flatten(self):
        """The pytree children (the factors) and no static data.

        Example:
          >>> import jax
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> len(jax.tree_util.tree_leaves(sj.Chain((sj.Dense(jnp.ones((3, 2))), sj.Dense(jnp.ones((2, 1)))))))
          2
        """
        return (self.ops,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        """Rebuild a ``Chain`` from its factors (no shape check: the factors chained when it was built).

        Example:
          >>> import jax
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> C = sj.Chain((sj.Dense(jnp.ones((3, 2))), sj.Dense(jnp.ones((2, 1)))))
          >>> jax.tree_util.tree_map(lambda a: 2.0 * a, C).apply(jnp.ones(1)).tolist()
          [8.0, 8.0, 8.0]
        """
        obj = object.__new__(cls)
        obj.ops = tuple(children[0])
        return obj

    def __repr__(self):
        return f"Chain({', '.join(repr(op) for op in self.ops)})"


def _check_index(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{name} must be a Python int (a 1-based layer index), got {type(v).__name__}")
    if not lo <= v <= hi:
        raise ValueError(f"{name} must satisfy {lo} <= {name} <= {hi}, got {v}")


def effective_dictionary(layers, i: int, j: int) -> LinearOperator:
    """D^{(i,j)} = D_i ... D_j (1-based, 1 <= i <= j <= K): the layer itself when i == j, else a ``Chain``
    (Sulam, Papyan, Romano, Elad, IEEE TSP 2018).

    Maps G_j (shape ``layers[j-1].code_shape``) to G_{i-1} (shape ``layers[i-1].signal_shape``; G_0 = x).

    Args:
      layers: tuple (D_1, ..., D_K) of chaining operators.
      i, j: 1-based layer indices (Python ints).

    Returns:
      A ``LinearOperator``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.ones((4, 3))), sj.Dense(jnp.ones((3, 2))))
      >>> D = sj.effective_dictionary(layers, 1, 2)
      >>> type(D).__name__, D.signal_shape, D.code_shape
      ('Chain', (4,), (2,))
    """
    layers = check_layers(layers)
    _check_index("j", j, 1, len(layers))
    _check_index("i", i, 1, j)
    return layers[i - 1] if i == j else Chain(layers[i - 1:j])


@jax.jit
def _dense_matrix(op):
    n = math.prod(op.code_shape)
    eye = jnp.eye(n, dtype=op.dtype).reshape((n,) + tuple(op.code_shape))
    return jax.vmap(op.apply)(eye).reshape(n, -1).T


def to_dense(op) -> jax.Array:
    """The explicit (prod signal_shape) x (prod code_shape) matrix of an operator (row-major flattening of
    codes and signals), columns = atoms. Costs one ``apply`` per atom: for small models only.

    Args:
      op: a ``LinearOperator`` (``Dense``, ``Conv``, ``Chain``).

    Returns:
      The matrix.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> C = sj.Chain((sj.Dense(jnp.array([[1.0, 2.0]])), sj.Dense(jnp.array([[1.0], [1.0]]))))
      >>> sj.to_dense(C).tolist()
      [[3.0]]
    """
    if not isinstance(op, LinearOperator):
        raise TypeError(f"op must be a LinearOperator (Dense, Conv or Chain), got {type(op).__name__}")
    if isinstance(op, Dense):
        return op.atoms
    return _dense_matrix(op)


def _unit_full_chain(ops: Tuple[Conv, ...]) -> Chain:
    """The same filters and strides with boundary "full", sized so that one code coefficient of the last
    factor synthesises exactly its whole molecule (code size 1 at the deepest layer)."""
    out = []
    P = (1,) * (ops[-1].filters.ndim - 2)
    for op in reversed(ops):
        N = tuple((p - 1) * op.stride + k for p, k in zip(P, op.filter_shape))
        out.append(Conv(op.filters, (op.num_channels,) + N, stride=op.stride, boundary="full",
                        method=op.method))
        P = N
    return Chain(tuple(reversed(out)))


@jax.jit
def _impulse_responses(chain: Chain) -> jax.Array:
    """chain.apply of a unit impulse in each channel of a (M, 1, ..., 1) code."""
    M = chain.code_shape[0]
    eye = jnp.eye(M, dtype=chain.dtype).reshape((M,) + tuple(chain.code_shape))
    return jax.vmap(chain.apply)(eye)


def molecules(layers, j: int, i: int = 1) -> jax.Array:
    """The atoms ("molecules") of D^{(i,j)} = D_i ... D_j, as arrays in the signal space of layer i.

    Convolutional layers: the effective filters, shape (M_j, C, *E), C = channels of G_{i-1}, E the
    molecule size (module docstring): molecule m is D^{(i,j)} applied to a unit impulse in channel m of G_j,
    placed so that the whole molecule is visible (boundary effects removed). Other layers (``Dense``):
    the columns of D_i ... D_j, shape (prod code_shape_j, *signal_shape_i).

    Args:
      layers: tuple (D_1, ..., D_K) of chaining operators.
      j: deepest layer (1-based). i: first layer (1-based, default 1, i <= j).

    Returns:
      The molecules, one per atom of G_j along the first axis.

    Example: two 1-D layers, filters of length 3 then 2 with stride 2: molecules of length 2 (2 - 1) + 3 = 5.
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D1 = sj.Conv(jnp.ones((2, 1, 3)), (1, 9), stride=2, boundary="full")
      >>> D2 = sj.Conv(jnp.ones((4, 2, 2)), D1.code_shape, boundary="full")
      >>> mol = sj.molecules((D1, D2), 2)
      >>> mol.shape, mol[0, 0].tolist()
      ((4, 1, 5), [2.0, 2.0, 4.0, 2.0, 2.0])
    """
    layers = check_layers(layers)
    _check_index("j", j, 1, len(layers))
    _check_index("i", i, 1, j)
    ops = layers[i - 1:j]
    if all(isinstance(op, Conv) for op in ops):
        return _impulse_responses(_unit_full_chain(ops))
    D = to_dense(Chain(ops))
    return D.T.reshape((D.shape[1],) + tuple(ops[0].signal_shape))


def synthesize(layers, GK):
    """All layers of a model signal from its deepest code: G_{i-1} = D_i G_i.

    Args:
      layers: tuple (D_1, ..., D_K). GK: the deepest code, shape ``layers[-1].code_shape``.

    Returns:
      ``(codes, x)``: codes = (G_1, ..., G_{K-1}) (empty for K = 1) and the signal x = D_1 G_1.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> layers = (sj.Dense(jnp.eye(2)), sj.Dense(jnp.array([[1.0], [2.0]])))
      >>> codes, x = sj.synthesize(layers, jnp.array([3.0]))
      >>> [G.tolist() for G in codes], x.tolist()
      ([[3.0, 6.0]], [3.0, 6.0])
    """
    layers = check_layers(layers)
    GK = V.as_float_array("GK", GK)
    V.check_shape("GK", GK, tuple(layers[-1].code_shape), "the code shape of the deepest layer")
    Gh = back_project(layers, GK)
    return tuple(Gh[:-1]), layers[0].apply(Gh[0])


@jax.tree_util.register_pytree_node_class
class MLModel:
    """A thin pytree wrapper around ``layers = (D_1, ..., D_K)`` (shapes checked once): the ML-CSC model
    x = D_1 G_1, G_{i-1} = D_i G_i (Papyan, Romano, Elad, JMLR 2017).

    Args:
      layers: tuple (D_1, ..., D_K) of chaining operators.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> model = sj.MLModel((sj.Dense(jnp.ones((4, 3))), sj.Dense(jnp.ones((3, 2)))))
      >>> model.depth, model.signal_shape
      (2, (4,))
    """

    def __init__(self, layers):
        self.layers = check_layers(layers)

    @property
    def depth(self) -> int:
        """K, the number of layers.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.MLModel((sj.Dense(jnp.ones((4, 3))),)).depth
          1
        """
        return len(self.layers)

    @property
    def signal_shape(self):
        """The signal shape of D_1.

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> sj.MLModel((sj.Dense(jnp.ones((4, 3))),)).signal_shape
          (4,)
        """
        return tuple(self.layers[0].signal_shape)

    def effective_dictionary(self, i: int, j: int) -> LinearOperator:
        """D^{(i,j)} = D_i ... D_j (``effective_dictionary``).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> model = sj.MLModel((sj.Dense(jnp.ones((4, 3))), sj.Dense(jnp.ones((3, 2)))))
          >>> model.effective_dictionary(1, 2).code_shape
          (2,)
        """
        return effective_dictionary(self.layers, i, j)

    def molecules(self, j: int, i: int = 1) -> jax.Array:
        """The atoms of D^{(i,j)} (``molecules``).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> model = sj.MLModel((sj.Dense(jnp.ones((4, 3))), sj.Dense(jnp.ones((3, 2)))))
          >>> model.molecules(2).shape
          (2, 4)
        """
        return molecules(self.layers, j, i)

    def synthesize(self, GK):
        """``(codes, x)`` from the deepest code (``synthesize``).

        Example:
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> model = sj.MLModel((sj.Dense(jnp.ones((4, 3))), sj.Dense(jnp.ones((3, 2)))))
          >>> model.synthesize(jnp.ones(2))[1].tolist()
          [6.0, 6.0, 6.0, 6.0]
        """
        return synthesize(self.layers, GK)

    def tree_flatten(self):
        """The pytree children (the layers) and no static data.

        Example:
          >>> import jax
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> len(jax.tree_util.tree_leaves(sj.MLModel((sj.Dense(jnp.ones((4, 3))),))))
          1
        """
        return (self.layers,), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        """Rebuild an ``MLModel`` from its layers (no shape check).

        Example:
          >>> import jax
          >>> import jax.numpy as jnp
          >>> import sparsejax as sj
          >>> model = sj.MLModel((sj.Dense(jnp.ones((4, 3))),))
          >>> jax.tree_util.tree_map(lambda a: 0.5 * a, model).layers[0].atoms[0].tolist()
          [0.5, 0.5, 0.5]
        """
        obj = object.__new__(cls)
        obj.layers = tuple(children[0])
        return obj

    def __repr__(self):
        return f"MLModel({', '.join(repr(op) for op in self.layers)})"
