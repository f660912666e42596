"""Unfolded pursuits as Flax (linen) networks: LISTA, ML-ISTA, ML-FISTA, layered BP, ML-LISTA and the CNN.

Every network is the library's pursuit run for a fixed number of steps, never a second copy of the maths:

* the layers are ``sparsejax.conv.operator.Conv`` operators with boundary "full" and stride s, so D_i^T
  (``adjoint``) is the VALID strided correlation, i.e. the CNN layer, and D_i (``apply``) the transposed
  convolution; their shapes come from a ``sparsejax.multilayer.architecture.Architecture``;
* the thresholding start is the first ML-ISTA sweep from G = 0: G_i = P_{r_i lam_i}(r_i D_i^T G_{i-1}), with the
  shrinkage P (``prox``, by default the non-negative soft thresholding S+_b(z) = ReLU(z - b)) parametrised by the
  CNN bias b_i = -r_i lam_i, so that S+ gives the CNN layer ReLU(r_i D_i^T G_{i-1} + b_i);
* ML-ISTA / ML-FISTA steps are ``sparsejax.multilayer.layered.ml_ista_solver`` (which calls ``ml_ista_step``,
  ``back_project``, ``layer_prox_grad_step``); layered BP steps are ``layer_prox_grad_step``.

Networks (``arch`` = the K convolutional layers, then a linear classifier on the deepest code G_K):

======================  ========================================================================================
``CNN``                 G_i = P(D_i^T G_{i-1} + b_i): layered thresholding, with P = ReLU the CNN
``MLISTANet(T)``        thresholding pass, then T ML-ISTA sweeps: exactly T + 1 ML-ISTA iterations from 0
``MLFISTANet(T)``       the same with ML-FISTA momentum on G_K: exactly T + 1 ML-FISTA iterations from 0
``LBPNet(T)``           layer by layer: thresholding start, then T ISTA steps on
                        min 1/2||G_{i-1} - D_i G||^2 + lam_i ||G||_1 (+ G >= 0 with S+): layered BP, unfolded
``MLLISTANet(T)``       ML-ISTA with untied filters: analysis W_i (used by D_i^T, the CNN filters) and synthesis
                        A_i (used by D_i and the back-projection), A_i initialised to W_i
``LISTA(n, m, T)``      Z_0 = h_th(W_e x), Z_t = h_th(W_e x + S Z_{t-1}); ``lista_params`` gives the ISTA values
                        W_e = D^T/L, S = I - D^T D/L, th = lam/L
======================  ========================================================================================

T = 0 gives exactly the CNN with the same weights for every convolutional network.

Parameters and steps. The published ML-ISTA networks learn a step r_i per layer. A learned step is one extra
scalar per layer, so by default the steps are FIXED at r_i = 1 (``learn_steps=False``): the scale of the
filters, which is learned, plays the role of the step (r D^T D with ||D||^2 free), and ML-ISTA, ML-FISTA and
LBP then have exactly the CNN's parameters (filters W_i, biases b_i, classifier). ``learn_steps=True`` adds
K scalars ``r1 .. rK`` (initialised to 1 and used as they are; the shrinkage threshold stays -b_i). ML-LISTA
adds the K synthesis filter banks A_i.

Layout: images are channels-first, a batch x of shape (B, C, H, W) (per image the (C, H, W) signal of
``sparsejax.conv.operator``). The networks run the pursuit functions on the whole batch at once, with the layers
as ``sparsejax.conv.operator.BatchConv`` operators (block-diagonal over images: one batched convolution per map,
with hand-written VJPs), and the T unfoldings unrolled: on XLA:CPU a ``vmap`` of the one-image pursuit with a
``fori_loop`` ran 10x (forward) to 20x (training step) slower. T is a fixed number of layers, so no stopping
test is lost by unrolling. The pure functions below work on either operator (``conv_layers(..., batch=B)`` or
``jax.vmap`` over ``Conv`` s).

References: J. Sulam, A. Aberdam, A. Beck, M. Elad, "On multi-layer basis pursuit, efficient algorithms and
convolutional neural networks", IEEE TPAMI 2020 (ML-ISTA, ML-FISTA, ML-LISTA, LBP networks and their MNIST
architecture); V. Papyan, Y. Romano, M. Elad, "Convolutional neural networks analyzed via convolutional sparse
coding", JMLR 2017 (the CNN forward pass as layered thresholding, layered BP); K. Gregor, Y. LeCun, "Learning
fast approximations of sparse coding", ICML 2010 (LISTA).
"""
from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sparsejax import shrink
from sparsejax import _validate as V
from sparsejax._validate import check_positive_int
from sparsejax.conv.operator import BatchConv, Conv
from sparsejax.multilayer.architecture import MNIST_ML_ISTA, Architecture
from sparsejax.multilayer.layered import (
    MLFISTAState,
    layer_prox_grad_step,
    ml_ista_solver,
)
from sparsejax.operators import Dense, LinearOperator

__all__ = ["MNIST_ARCH", "check_arch", "layer_shapes", "conv_layers", "threshold_pass", "unfolded_ml_ista",
           "unfolded_lbp", "CNN", "MLISTANet", "MLFISTANet", "LBPNet", "MLLISTANet", "LISTA", "lista_params",
           "count_params", "NETWORKS"]

# deprecated alias: the MNIST network of the ML-ISTA paper (28 -> 12 -> 4 -> 1) is
# sparsejax.multilayer.architecture.MNIST_ML_ISTA
MNIST_ARCH = MNIST_ML_ISTA


# ----------------------------------------------------------------------------------------------------
# geometry (static, checked before tracing)
# ----------------------------------------------------------------------------------------------------
def _image_shape(input_shape) -> Tuple[int, int, int]:
    """``input_shape`` checked as the (C, H, W) of one image."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    return tuple(check_positive_int(f"input_shape[{j}]", v) for j, v in enumerate(input_shape))


def _check_unfoldings(T) -> int:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 0:
        raise ValueError(f"T (number of unfoldings) must be a non-negative int, got {T!r}")
    return int(T)


def check_arch(arch, input_shape) -> Tuple[Architecture, Tuple[int, int, int]]:
    """Deprecated: use ``Architecture(arch)`` and ``Architecture.layer_shapes(input_shape)``.

    Checks ``arch`` (a sequence of (filters, kernel, stride) layers, all three given) and ``input_shape``
    (C, H, W) before tracing.

    Args:
      arch: the layers, D_1 first, as an ``Architecture`` or (filters, kernel, stride) tuples.
      input_shape: (C, H, W) of one image.

    Returns:
      (the ``Architecture``, ``input_shape`` as a tuple of ints).

    Raises:
      ValueError / TypeError naming ``arch[i]`` or ``input_shape``.

    Example:
      >>> import sparsejax as sj
      >>> arch, shape = sj.nn.check_arch([(4, 4, 2)], (1, 12, 12))
      >>> arch == ((4, 4, 2),), shape
      (True, (1, 12, 12))
    """
    if isinstance(arch, (tuple, list)) and not isinstance(arch, Architecture):
        for i, layer in enumerate(arch):
            if isinstance(layer, (tuple, list)) and len(layer) != 3:
                raise ValueError(f"arch[{i}] must be (filters, kernel, stride), got {layer!r}")
    return Architecture(arch, "arch"), _image_shape(input_shape)


def layer_shapes(arch, input_shape) -> Tuple[Tuple[int, ...], ...]:
    """Deprecated: use ``Architecture(arch).layer_shapes(input_shape)``, which gives per layer the filter,
    signal and code shapes.

    The signal shapes (C_i, H_i, W_i) of every layer and, last, the code shape of the deepest layer: layer i maps
    codes of shape ``shapes[i + 1]`` to signals of shape ``shapes[i]`` (boundary "full",
    P = floor((N - k) / s) + 1: a CNN layer with VALID padding).

    Args:
      arch: the layers, D_1 first, as an ``Architecture`` or (filters, kernel, stride) tuples.
      input_shape: (C, H, W) of one image.

    Returns:
      A tuple of K + 1 shapes.

    Example:
      >>> import sparsejax as sj
      >>> sj.nn.layer_shapes(sj.nn.MNIST_ARCH, (1, 28, 28))
      ((1, 28, 28), (32, 12, 12), (64, 4, 4), (512, 1, 1))
    """
    arch, shape = check_arch(arch, input_shape)
    shapes = arch.layer_shapes(shape)
    return tuple(s.signal for s in shapes) + (shapes[-1].code,)


def conv_layers(filters: Sequence[jax.Array], arch, input_shape, batch: int | None = None) -> Tuple[Any, ...]:
    """The layer operators (D_1, ..., D_K) of a network: ``Conv`` with boundary "full" and the direct method.

    D_i maps codes (M_i, *P_i) to signals (M_{i-1}, *N_i) (its ``adjoint`` is the CNN layer's VALID strided
    correlation); with ``batch`` = B, the ``BatchConv`` operators acting on B images at once, codes
    (B, M_i, *P_i) to signals (B, M_{i-1}, *N_i).

    Args:
      filters: (W_1, ..., W_K), W_i of shape (M_i, M_{i-1}, k_i, k_i) (``Architecture.layer_shapes``).
      arch: the layers, as an ``Architecture`` or (filters, kernel, stride) tuples.
      input_shape: (C, H, W) of one image.
      batch: the number of images B for ``BatchConv`` operators; None for one-image ``Conv`` s.

    Returns:
      The tuple of K operators.

    Example:
      >>> import jax
      >>> import sparsejax as sj
      >>> W = [jax.random.normal(jax.random.PRNGKey(0), (4, 1, 4, 4))]
      >>> (D,) = sj.nn.conv_layers(W, [(4, 4, 2)], (1, 12, 12), batch=3)
      >>> D.signal_shape, D.code_shape
      ((3, 1, 12, 12), (3, 4, 5, 5))
    """
    arch = Architecture(arch, "arch")
    shapes = arch.layer_shapes(_image_shape(input_shape))
    layers = tuple(Conv(W, shape.signal, stride=layer.stride, boundary="full", method="direct")
                   for W, shape, layer in zip(filters, shapes, arch))
    return layers if batch is None else tuple(BatchConv(D, batch) for D in layers)


# ----------------------------------------------------------------------------------------------------
# the pursuits (pure functions on any layer operators: one image with Conv, a batch with BatchConv)
# ----------------------------------------------------------------------------------------------------
def threshold_pass(layers, y, lams, steps, prox="nonneg_soft") -> Tuple[jax.Array, ...]:
    """Layered thresholding: G_0 = y, G_i = P_{r_i lam_i}(r_i D_i^T G_{i-1}), i = 1..K.

    It is also the first ML-ISTA sweep from G = 0 (Sulam, Aberdam, Beck, Elad, IEEE TPAMI 2020). With
    P = S+ (``prox="nonneg_soft"``), r_i = 1 and lam_i = -b_i it is the CNN forward pass
    ReLU(D_i^T G_{i-1} + b_i) (Papyan, Romano, Elad, JMLR 2017).

    Args:
      layers: (D_1, ..., D_K) operators whose shapes chain (``conv_layers``).
      y: the signal (or batch of signals, with ``BatchConv`` layers), shape ``layers[0].signal_shape``.
      lams: per-layer thresholds lam_i (scalars or broadcastable to the codes, e.g. (M_i, 1, 1)).
      steps: per-layer steps r_i.
      prox: the shrinkage: "nonneg_soft" (default), "soft", "hard" or a callable ``(z, threshold) -> z``.

    Returns:
      The codes (G_1, ..., G_K).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> W = [jax.random.normal(jax.random.PRNGKey(0), (4, 1, 4, 4))]
      >>> layers = sj.nn.conv_layers(W, [(4, 4, 2)], (1, 12, 12))
      >>> y = jax.random.normal(jax.random.PRNGKey(1), (1, 12, 12))
      >>> (G,) = sj.nn.threshold_pass(layers, y, (0.5,), (1.0,))
      >>> bool(jnp.allclose(G, jax.nn.relu(layers[0].adjoint(y) - 0.5)))
      True
    """
    P = shrink.get(prox)
    out, prev = [], y
    for D, lam, r in zip(layers, lams, steps):
        prev = P(r * D.adjoint(prev), r * lam)
        out.append(prev)
    return tuple(out)


def unfolded_ml_ista(layers, y, lams, steps, T: int, fista: bool = False,
                     prox="nonneg_soft") -> Tuple[jax.Array, ...]:
    """T + 1 ML-ISTA (``fista``: ML-FISTA) iterations from G = 0, unrolled (Sulam, Aberdam, Beck, Elad,
    IEEE TPAMI 2020).

    One iteration from G_K back-projects Gh_i = D_{i+1} ... D_K G_K and sets
    G_i = P_{r_i lam_i}(Gh_i - r_i D_i^T(D_i Gh_i - G_{i-1})), G_0 = y; ML-FISTA takes the sweep from a momentum
    point on G_K. The first iteration is ``threshold_pass``; the remaining T are the steps of
    ``sparsejax.multilayer.layered.ml_ista_solver``. Equal to ``sparsejax.multilayer.layered.ml_ista(layers, y,
    lams, steps=steps, max_iter=T + 1, mode="scan", prox=prox, fista=fista).state.G``.

    Args:
      layers, y, lams, steps, prox: as ``threshold_pass``.
      T: number of iterations after the first (a static int >= 0).
      fista: ML-FISTA instead of ML-ISTA.

    Returns:
      The codes (G_1, ..., G_K) of the last iteration.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> W = [0.3 * jax.random.normal(jax.random.PRNGKey(0), (4, 1, 4, 4))]
      >>> layers = sj.nn.conv_layers(W, [(4, 4, 2)], (1, 12, 12))
      >>> y = jax.random.normal(jax.random.PRNGKey(1), (1, 12, 12))
      >>> G0 = sj.nn.threshold_pass(layers, y, (0.1,), (1.0,))
      >>> bool(jnp.array_equal(sj.nn.unfolded_ml_ista(layers, y, (0.1,), (1.0,), T=0)[0], G0[0]))
      True
    """
    T = _check_unfoldings(T)
    G0 = threshold_pass(layers, y, lams, steps, prox)
    solver = ml_ista_solver(layers, y, lams, steps, G0, prox=prox, fista=fista)
    state = solver.init()
    if fista:   # the state after the first iteration from 0: t_1 = (1 + sqrt(5)) / 2, z_1 = G_K
        state = MLFISTAState(G0, G0[-1], jnp.asarray(0.5 * (1.0 + math.sqrt(5.0)), G0[-1].dtype))
    for _ in range(T):   # unrolled: T is small and static, and XLA:CPU runs convolutions in loops ~10x slower
        state = solver.step(state)
    return tuple(state.G)


def unfolded_lbp(layers, y, lams, steps, T: int, prox="nonneg_soft") -> Tuple[jax.Array, ...]:
    """Unfolded layered basis pursuit (Papyan, Romano, Elad, JMLR 2017; unfolded as in Sulam, Aberdam, Beck,
    Elad, IEEE TPAMI 2020).

    For i = 1..K, T + 1 ISTA steps from 0 with step r_i on min_G 1/2||G_{i-1} - D_i G||^2 + lam_i ||G||_1
    (with P = S+ also G >= 0), G_0 = y: G <- P_{r_i lam_i}(G - r_i D_i^T(D_i G - G_{i-1})). The first step is
    the thresholding start P_{r_i lam_i}(r_i D_i^T G_{i-1}).

    Args:
      layers, y, lams, steps, prox: as ``threshold_pass``.
      T: number of ISTA steps per layer after the first (a static int >= 0).

    Returns:
      The codes (G_1, ..., G_K).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> W = [0.3 * jax.random.normal(jax.random.PRNGKey(0), (4, 1, 4, 4))]
      >>> layers = sj.nn.conv_layers(W, [(4, 4, 2)], (1, 12, 12))
      >>> y = jax.random.normal(jax.random.PRNGKey(1), (1, 12, 12))
      >>> (G,) = sj.nn.unfolded_lbp(layers, y, (0.1,), (1.0,), T=3)
      >>> G.shape, bool(jnp.all(G >= 0))
      ((4, 5, 5), True)
    """
    T = _check_unfoldings(T)
    P = shrink.get(prox)
    out, prev = [], y
    for D, lam, r in zip(layers, lams, steps):
        G = P(r * D.adjoint(prev), r * lam)
        for _ in range(T):   # unrolled (see unfolded_ml_ista)
            G = layer_prox_grad_step(D, G, prev, lam, r, P)
        out.append(G)
        prev = G
    return tuple(out)


@jax.tree_util.register_pytree_node_class
class _Untied(LinearOperator):
    """D with untied maps: apply = ``synthesis.apply``, adjoint = ``analysis.adjoint`` (ML-LISTA). Equal to
    the ``Conv`` of the analysis filters when the two filter banks are equal."""

    def __init__(self, synthesis: Conv, analysis: Conv):
        self.synthesis, self.analysis = synthesis, analysis

    code_shape = property(lambda self: self.analysis.code_shape)
    signal_shape = property(lambda self: self.analysis.signal_shape)
    dtype = property(lambda self: self.analysis.dtype)

    def apply(self, codes):
        return self.synthesis.apply(codes)

    def adjoint(self, signal):
        return self.analysis.adjoint(signal)

    def tree_flatten(self):
        return (self.synthesis, self.analysis), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


# ----------------------------------------------------------------------------------------------------
# Flax modules
# ----------------------------------------------------------------------------------------------------
def _filter_init(scale: float):
    """N(0, (scale / sqrt(fan_in))^2) filters, fan_in = C k k (the initialisation of the published networks)."""
    def init(key, shape, dtype=jnp.float32):
        fan_in = math.prod(shape[1:])
        return (scale / math.sqrt(fan_in)) * jax.random.normal(key, shape, dtype)
    return init


# the attributes, input and output shared by the convolutional networks (appended to each class docstring)
_CONVNET_DOC = """
    Attributes:
      arch: the K convolutional layers, D_1 first: an ``Architecture`` or (filters M_i, kernel k_i, stride s_i)
        tuples (default ``sparsejax.multilayer.architecture.MNIST_ML_ISTA``, the MNIST network of Sulam et al.,
        TPAMI 2020: 28 -> 12 -> 4 -> 1).
      T: number of unfoldings, an int >= 0 (ignored by ``CNN``); T = 0 is the CNN.
      input_shape: (C, H, W) of one image.
      num_classes: outputs of the linear classifier on the flattened G_K.
      learn_steps: learn one step r_i per layer (K extra scalars ``r1 .. rK``); default fixed r_i = 1.
      first_scale: std of the first layer's filters times sqrt(fan_in) (the other layers: 1).
      param_dtype: dtype of the parameters.
      prox: the shrinkage P with threshold -b_i: "nonneg_soft" (default: P(z + b) = ReLU(z + b), the CNN),
        "soft", "hard", or a callable ``(z, threshold) -> z`` (``sparsejax.shrink.get``).

    Parameters: ``W1 .. WK`` the filters (M_i, M_{i-1}, k_i, k_i); ``b1 .. bK`` the biases (M_i, 1, 1)
    (thresholds lam_i = -b_i / r_i); ``classifier`` a ``flax.linen.Dense`` (``kernel``, ``bias``); with
    ``learn_steps`` the steps ``r1 .. rK``; ML-LISTA also ``A1 .. AK``.

    Call: ``net.apply(variables, x)`` with x a batch of images, shape (B, C, H, W), channels first. Returns the
    logits (B, num_classes); with ``return_codes=True`` the pair (logits, (G_1, ..., G_K)), G_i of shape
    (B, M_i, H_i, W_i) (``Architecture.layer_shapes``).
"""


class _ConvNet(nn.Module):
    """Base of the convolutional unfolded networks (see the module docstring)."""

    arch: Any = MNIST_ML_ISTA
    T: int = 0
    input_shape: Tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    learn_steps: bool = False
    first_scale: float = 0.1
    param_dtype: Any = jnp.float32
    prox: Any = "nonneg_soft"

    pursuit: ClassVar[str] = "cnn"
    untied: ClassVar[bool] = False

    def _encode(self, layers, y, lams, steps, prox):
        if self.pursuit == "cnn" or self.T == 0:
            return threshold_pass(layers, y, lams, steps, prox)
        if self.pursuit in ("ml_ista", "ml_fista"):
            return unfolded_ml_ista(layers, y, lams, steps, self.T, fista=self.pursuit == "ml_fista", prox=prox)
        return unfolded_lbp(layers, y, lams, steps, self.T, prox)

    def _check_input(self, x, input_shape):
        x = jnp.asarray(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != input_shape:
            raise ValueError(f"x must be a batch of images of shape (B, {', '.join(map(str, input_shape))})"
                             f" (channels first), got {tuple(x.shape)}")
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"x must be a floating-point array, got dtype {x.dtype}")
        return x

    @nn.compact
    def __call__(self, x, return_codes: bool = False):
        """The network on a batch of images (class docstring).

        Args:
          x: images of shape (B, C, H, W), floating point.
          return_codes: also return the codes (G_1, ..., G_K).

        Returns:
          The logits (B, num_classes), or (logits, codes) with ``return_codes``.
        """
        _check_unfoldings(self.T)
        arch = Architecture(self.arch, "arch")
        input_shape = _image_shape(self.input_shape)
        shapes = arch.layer_shapes(input_shape)
        prox = shrink.get(self.prox)
        x = self._check_input(x, input_shape)
        pd = self.param_dtype
        W, A, b, r = [], [], [], []
        for i, shape in enumerate(shapes):
            scale = self.first_scale if i == 0 else 1.0
            Wi = self.param(f"W{i + 1}", _filter_init(scale), shape.filters, pd)
            W.append(Wi)
            if self.untied:
                A.append(self.param(f"A{i + 1}", lambda _key, W=Wi: W))
            b.append(self.param(f"b{i + 1}", nn.initializers.zeros, (shape.filters[0], 1, 1), pd))
            r.append(self.param(f"r{i + 1}", nn.initializers.ones, (), pd) if self.learn_steps
                     else jnp.ones((), pd))
        # shrinkage P_{r lam} with r lam = -b: the CNN bias
        lams = tuple(-bi / ri for bi, ri in zip(b, r))
        x = x.astype(jnp.result_type(x.dtype, pd))

        layers = conv_layers(W, arch, input_shape, batch=x.shape[0])
        if self.untied:
            synth = conv_layers(A, arch, input_shape, batch=x.shape[0])
            layers = tuple(_Untied(Ds, D) for Ds, D in zip(synth, layers))
        codes = self._encode(layers, x, lams, tuple(r), prox)
        feats = codes[-1].reshape(codes[-1].shape[0], -1)
        logits = nn.Dense(self.num_classes, param_dtype=pd, name="classifier")(feats)
        return (logits, codes) if return_codes else logits


class CNN(_ConvNet):
    __doc__ = """The CNN: layered thresholding G_i = P(D_i^T G_{i-1} + b_i), with P = ReLU by default, and a linear
    classifier on G_K (Papyan, Romano, Elad, JMLR 2017). ``T`` is ignored.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> net = sj.nn.CNN(arch=((4, 4, 2), (6, 3, 1)), input_shape=(1, 12, 12), num_classes=3)
      >>> x = jnp.ones((2, 1, 12, 12))
      >>> variables = net.init(jax.random.PRNGKey(0), x)
      >>> logits, codes = net.apply(variables, x, return_codes=True)
      >>> logits.shape, [G.shape for G in codes]
      ((2, 3), [(2, 4, 5, 5), (2, 6, 3, 3)])
      >>> bool(jnp.all(codes[-1] >= 0))       # ReLU: non-negative codes
      True
""" + _CONVNET_DOC
    pursuit: ClassVar[str] = "cnn"


class MLISTANet(_ConvNet):
    __doc__ = """Unfolded ML-ISTA: T + 1 ML-ISTA iterations from 0 (``unfolded_ml_ista``; Sulam, Aberdam, Beck,
    Elad, IEEE TPAMI 2020). With S+ shrinkage its codes are non-negative; T = 0 is the CNN with the same weights.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> kw = dict(arch=((4, 4, 2), (6, 3, 1)), input_shape=(1, 12, 12), num_classes=3)
      >>> x = jax.random.uniform(jax.random.PRNGKey(1), (2, 1, 12, 12))
      >>> variables = sj.nn.MLISTANet(T=2, **kw).init(jax.random.PRNGKey(0), x)
      >>> cnn = sj.nn.CNN(**kw).apply(variables, x)
      >>> bool(jnp.array_equal(sj.nn.MLISTANet(T=0, **kw).apply(variables, x), cnn))
      True
      >>> sj.nn.MLISTANet(T=2, prox="soft", **kw).apply(variables, x).shape
      (2, 3)
""" + _CONVNET_DOC
    pursuit: ClassVar[str] = "ml_ista"


class MLFISTANet(_ConvNet):
    __doc__ = """Unfolded ML-FISTA: T + 1 ML-FISTA iterations from 0, momentum on G_K (``unfolded_ml_ista`` with
    ``fista=True``; Sulam, Aberdam, Beck, Elad, IEEE TPAMI 2020).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> net = sj.nn.MLFISTANet(arch=((4, 4, 2),), input_shape=(1, 12, 12), num_classes=3, T=2)
      >>> x = jnp.ones((2, 1, 12, 12))
      >>> net.apply(net.init(jax.random.PRNGKey(0), x), x).shape
      (2, 3)
""" + _CONVNET_DOC
    pursuit: ClassVar[str] = "ml_fista"


class LBPNet(_ConvNet):
    __doc__ = """Unfolded layered BP: per layer T + 1 ISTA steps from 0, the first being the CNN layer
    (``unfolded_lbp``; Sulam, Aberdam, Beck, Elad, IEEE TPAMI 2020).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> net = sj.nn.LBPNet(arch=((4, 4, 2), (6, 3, 1)), input_shape=(1, 12, 12), num_classes=3, T=1)
      >>> x = jnp.ones((2, 1, 12, 12))
      >>> net.apply(net.init(jax.random.PRNGKey(0), x), x).shape
      (2, 3)
""" + _CONVNET_DOC
    pursuit: ClassVar[str] = "lbp"


class MLLISTANet(_ConvNet):
    __doc__ = """ML-LISTA: ML-ISTA with untied synthesis filters A_i (K extra filter banks, initialised to W_i;
    Sulam, Aberdam, Beck, Elad, IEEE TPAMI 2020): D_i^T uses W_i, D_i and the back-projection use A_i.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> net = sj.nn.MLLISTANet(arch=((4, 4, 2),), input_shape=(1, 12, 12), num_classes=3, T=2)
      >>> params = net.init(jax.random.PRNGKey(0), jnp.ones((2, 1, 12, 12)))["params"]
      >>> bool(jnp.array_equal(params["A1"], params["W1"]))
      True
""" + _CONVNET_DOC
    pursuit: ClassVar[str] = "ml_ista"
    untied: ClassVar[bool] = True


NETWORKS = {"cnn": CNN, "ml_ista": MLISTANet, "ml_fista": MLFISTANet, "lbp": LBPNet, "ml_lista": MLLISTANet}


class LISTA(nn.Module):
    """LISTA (Gregor, LeCun, "Learning fast approximations of sparse coding", ICML 2010):
    Z_0 = h_th(W_e x), Z_t = h_th(W_e x + S Z_{t-1}), t = 1..T.

    Attributes:
      n: signal dimension.
      m: number of atoms (code dimension).
      T: number of recurrent layers, an int >= 0.
      prox: the shrinkage h: "soft" (default), "nonneg_soft", "hard" or a callable ``(z, threshold) -> z``
        (``sparsejax.shrink.get``).
      param_dtype: parameter dtype.

    Parameters ``W_e`` (m, n), ``S`` (m, m), ``theta`` (m,) (one threshold per atom). The default init is
    generic (W_e ~ N(0, 1/n), S = 0, theta = 0); ``lista_params(D, lam)`` gives the ISTA values, with which
    LISTA(T) equals T + 1 ISTA steps from 0 with step 1/L.

    Call: ``Z = lista.apply(variables, x)``, x of shape (B, n) (or (n,)); returns the codes (B, m) (or (m,)).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> D = sj.normalize_atoms(jax.random.normal(jax.random.PRNGKey(0), (8, 16)))
      >>> y = jax.random.normal(jax.random.PRNGKey(1), (8,))
      >>> variables = sj.nn.lista_params(D, 0.1)
      >>> L = 0.1 / variables["params"]["theta"][0]
      >>> Z = sj.nn.LISTA(8, 16, T=2).apply(variables, y)
      >>> ref = sj.ista(D, y, 0.1, step=1.0 / L, max_iter=3, mode="scan", tol=0.0).codes
      >>> bool(jnp.allclose(Z, ref, atol=1e-5))
      True
    """

    n: int
    m: int
    T: int
    prox: Any = "soft"
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        """The codes of x (class docstring).

        Args:
          x: signals of shape (B, n) or one signal (n,).

        Returns:
          The codes Z_T, shape (B, m) or (m,).
        """
        check_positive_int("n", self.n)
        check_positive_int("m", self.m)
        _check_unfoldings(self.T)
        P: Callable = shrink.get(self.prox)
        x = jnp.asarray(x)
        if x.ndim not in (1, 2) or x.shape[-1] != self.n:
            raise ValueError(f"x must have shape (B, {self.n}) or ({self.n},), got {tuple(x.shape)}")
        pd = self.param_dtype
        We = self.param("W_e", nn.initializers.normal(1.0 / math.sqrt(self.n)), (self.m, self.n), pd)
        S = self.param("S", nn.initializers.zeros, (self.m, self.m), pd)
        th = self.param("theta", nn.initializers.zeros, (self.m,), pd)

        def one(xi):
            B = We @ xi
            Z = P(B, th)
            for _ in range(self.T):   # unrolled, as the convolutional networks
                Z = P(B + S @ Z, th)
            return Z

        return one(x) if x.ndim == 1 else jax.vmap(one)(x)


def lista_params(D, lam, L=None) -> dict:
    """LISTA variables at the ISTA values (Gregor, LeCun, ICML 2010) for the dictionary D (n, m) and l1 weight
    lam: W_e = D^T / L, S = I - D^T D / L, theta = lam / L (per atom), L = ||D||_2^2 by default.

    With them ``LISTA(n, m, T)`` computes T + 1 ISTA steps from 0 with step 1/L.

    Args:
      D: the dictionary, an (n, m) array or a ``sparsejax.operators.Dense``.
      lam: l1 weight >= 0, a scalar or one value per atom (m,).
      L: the step's inverse, > 0 (default ||D||_2^2).

    Raises before tracing: an empty, non-float (float16 included) or non-finite D, a negative or misshaped lam, L <= 0.

    Returns:
      ``{"params": {"W_e", "S", "theta"}}`` for ``LISTA(n, m, T).apply``.

    Example:
      >>> import jax.numpy as jnp
      >>> import sparsejax as sj
      >>> p = sj.nn.lista_params(jnp.eye(3), 0.5)["params"]
      >>> p["W_e"].shape, bool(jnp.allclose(p["S"], 0.0)), p["theta"].tolist()
      ((3, 3), True, [0.5, 0.5, 0.5])
    """
    op = Dense(V.check_dictionary("D", D, "n signal dimensions x m atoms"))
    atoms = op.atoms
    L = op.lipschitz() if L is None else V.check_nonnegative_scalar("L", L, strict=True).astype(atoms.dtype)
    m = atoms.shape[1]
    lam = V.as_float_array("lam", lam)
    V.check_shape("lam", lam, (m,) if lam.ndim else (), "a scalar or one value per atom")
    V.check_nonnegative("lam", lam)
    lam = jnp.broadcast_to(lam.astype(atoms.dtype), (m,))
    return {"params": {"W_e": atoms.T / L, "S": jnp.eye(m, dtype=atoms.dtype) - op.gram() / L,
                       "theta": lam / L}}


def count_params(variables) -> int:
    """Number of scalar parameters in a Flax variables dict (its "params" collection) or any pytree of arrays.

    Args:
      variables: the output of ``module.init`` (or of ``jax.eval_shape`` of it), or a pytree of arrays.

    Returns:
      The total number of entries, an int.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> import sparsejax as sj
      >>> net = sj.nn.CNN(arch=((4, 4, 2),), input_shape=(1, 12, 12), num_classes=3)
      >>> shapes = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0), jnp.ones((1, 1, 12, 12))))
      >>> sj.nn.count_params(shapes)         # W1 4*16 + b1 4 + classifier 4*25*3 + 3
      371
    """
    tree = variables.get("params", variables) if isinstance(variables, dict) else variables
    return int(sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(tree)))
