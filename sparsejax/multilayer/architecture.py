"""The layer shapes of a multi-layer convolutional model: one ``Architecture`` type.

An architecture is the list of the K convolutional layers of an ML-CSC model or of a CNN, D_1 first: layer i has
``n_filters`` M_i filters of spatial size ``kernel`` k_i and stride s_i. It fixes every shape once the input
shape (C, *N) is known (one image with C channels and 1 or 2 spatial axes, channels first):

* layer i has filters of shape (M_i, M_{i-1}, *k_i), with M_0 = C;
* it synthesises a signal of shape (M_{i-1}, *N_i) (the image for i = 1, the code of layer i - 1 after) from a code
  of shape (M_i, *P_i), with the "full" boundary: P_i = floor((N_i - k_i) / s_i) + 1 per spatial axis. Read
  backwards this is a CNN layer with VALID padding: its correlation with stride s_i maps (M_{i-1}, *N_i) to
  (M_i, *P_i).

The molecules (the atoms of the effective dictionary D_1 D_2 ... D_j) have the spatial size E_1 given by
E_j = k_j and E_l = s_l (E_{l+1} - 1) + k_l for l = j - 1, ..., 1 (``Architecture.molecule_sizes``).

Two published MNIST architectures are constants here:

* ``MNIST_ML_ISTA``: the classification network of the unfolded pursuits (J. Sulam, A. Aberdam, A. Beck, M. Elad,
  "On multi-layer basis pursuit, efficient algorithms and convolutional neural networks", IEEE TPAMI 2020,
  MNIST experiments): 32 filters 6x6 stride 2, 64 filters 6x6 stride 2, 512 filters 4x4 stride 1 (28 -> 12 -> 4 -> 1).
* ``MNIST_ML_CSC``: the ML-CSC dictionaries learned on MNIST, after J. Sulam, V. Papyan, Y. Romano, M. Elad,
  "Multilayer convolutional sparse modeling: pursuit and dictionary learning", IEEE TSP 2018: 32 filters 7x7,
  128 filters 3x3, 1024 filters 2x2, with strides 7, 1, 1 (this project's choice, explained in
  ``sparsejax.learn.multilayer``), so that the molecules are 7x7, 21x21 and 28x28 and the deepest code of a
  28x28 digit is 1024x1x1.

An ``Architecture`` is a tuple of ``Layer`` s: it is immutable and hashable (a static argument of ``jax.jit`` and
a Flax module attribute), and it compares equal to the plain tuples ``((M_1, k_1, s_1), ...)`` it was made from.
Every check runs in Python when it is built, before anything is traced.
"""
from __future__ import annotations

from typing import NamedTuple, Tuple, Union

from sparsejax._validate import check_positive_int
from sparsejax.conv.operator import conv_code_shape

__all__ = ["Layer", "LayerShape", "Architecture", "MNIST_ML_ISTA", "MNIST_ML_CSC"]


class Layer(NamedTuple):
    """One convolutional layer: ``n_filters`` M_i, ``kernel`` k_i and ``stride`` s_i.

    Attributes:
      n_filters: number of filters M_i (the channels of the layer's code).
      kernel: the filters' spatial size: an int (the same on every spatial axis) or one int per spatial axis.
      stride: the stride s_i of the layer (default 1).

    Example:
      >>> from sparsejax.multilayer.architecture import Layer
      >>> Layer(32, 7)
      Layer(n_filters=32, kernel=7, stride=1)
    """

    n_filters: int
    kernel: Union[int, Tuple[int, ...]]
    stride: int = 1


class LayerShape(NamedTuple):
    """The shapes of one layer for a given input: ``filters`` (M_i, M_{i-1}, *k_i), ``signal`` (M_{i-1}, *N_i)
    (what the layer synthesises) and ``code`` (M_i, *P_i).

    Example:
      >>> from sparsejax.multilayer.architecture import Architecture
      >>> Architecture([(4, 3, 2)]).layer_shapes((1, 9, 9))[0]
      LayerShape(filters=(4, 1, 3, 3), signal=(1, 9, 9), code=(4, 4, 4))
    """

    filters: Tuple[int, ...]
    signal: Tuple[int, ...]
    code: Tuple[int, ...]


def _kernel(name: str, kernel) -> Union[int, Tuple[int, ...]]:
    if isinstance(kernel, (tuple, list)):
        if not kernel:
            raise ValueError(f"{name} must be an int or one int per spatial axis, got an empty sequence")
        return tuple(check_positive_int(f"{name}[{j}]", k) for j, k in enumerate(kernel))
    return check_positive_int(name, kernel)


def _layer(name: str, layer) -> Layer:
    """One layer, given as a ``Layer`` or a (n_filters, kernel[, stride]) sequence, with its entries checked."""
    if not isinstance(layer, (tuple, list)):
        raise TypeError(f"{name} must be a layer (n_filters, kernel, stride), got {layer!r}")
    if len(layer) not in (2, 3):
        raise ValueError(f"{name} must be (n_filters, kernel, stride) or (n_filters, kernel), got {tuple(layer)!r}")
    layer = Layer(*layer)
    return Layer(check_positive_int(f"{name}.n_filters", layer.n_filters), _kernel(f"{name}.kernel", layer.kernel),
                 check_positive_int(f"{name}.stride", layer.stride))


def _input_shape(input_shape) -> Tuple[int, ...]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a tuple (C, L) or (C, H, W), got {input_shape!r}") from None
    if len(shape) not in (2, 3):
        raise ValueError(f"input_shape must be (C, L) (1-D signals) or (C, H, W) (images), channels first, "
                         f"got {shape}")
    return tuple(check_positive_int(f"input_shape[{j}]", v) for j, v in enumerate(shape))


class Architecture(tuple):
    """The layers (D_1, ..., D_K) of a multi-layer convolutional model: an immutable tuple of ``Layer`` s.

    Built from another ``Architecture``, or from any sequence of ``Layer`` s or (n_filters, kernel, stride)
    tuples (the forms of ``sparsejax.nn.unfolded.MNIST_ARCH`` and ``sparsejax.learn.multilayer.LayerSpec``);
    (n_filters, kernel) means stride 1. Every entry is checked here, in Python: a wrong value raises a
    ValueError or TypeError that names it, e.g. ``architecture[1].stride``.

    The model and its shapes are those of the module docstring: the ML-CSC model of V. Papyan, Y. Romano,
    M. Elad, "Convolutional neural networks analyzed via convolutional sparse coding", JMLR 2017, and of
    Sulam, Papyan, Romano, Elad, IEEE TSP 2018, with strided layers as in Sulam, Aberdam, Beck, Elad, IEEE TPAMI
    2020.

    Args:
      layers: a non-empty sequence of layers, D_1 first.
      name: the argument's name in error messages (default "architecture").

    Example:
      >>> from sparsejax.multilayer.architecture import Architecture
      >>> arch = Architecture([(4, 3, 2), (6, 2)])
      >>> arch.strides, len(arch), arch == ((4, 3, 2), (6, 2, 1))
      ((2, 1), 2, True)
      >>> [s.code for s in arch.layer_shapes((1, 9, 9))]
      [(4, 4, 4), (6, 3, 3)]
    """

    __slots__ = ()

    def __new__(cls, layers, name: str = "architecture"):
        if isinstance(layers, Architecture):
            return layers
        if not isinstance(layers, (tuple, list)):
            raise TypeError(f"{name} must be a non-empty sequence of layers (n_filters, kernel, stride), "
                            f"got {layers!r}")
        if not layers:
            raise ValueError(f"{name} must hold at least one layer (n_filters, kernel, stride), got an empty "
                             f"sequence")
        return super().__new__(cls, (_layer(f"{name}[{i}]", layer) for i, layer in enumerate(layers)))

    def __repr__(self) -> str:
        return f"Architecture({tuple(self)!r})"

    @property
    def strides(self) -> Tuple[int, ...]:
        """The strides (s_1, ..., s_K).

        Example:
          >>> from sparsejax.multilayer.architecture import MNIST_ML_ISTA
          >>> MNIST_ML_ISTA.strides
          (2, 2, 1)
        """
        return tuple(layer.stride for layer in self)

    def kernel_shapes(self, ndim: int) -> Tuple[Tuple[int, ...], ...]:
        """The kernels k_i as one size per spatial axis, for signals with ``ndim`` spatial axes.

        Args:
          ndim: number of spatial axes of the signals (1 or 2).

        Returns:
          One tuple of ``ndim`` ints per layer.

        Raises:
          ValueError: a kernel given per axis with another number of axes (naming ``architecture[i].kernel``).

        Example:
          >>> from sparsejax.multilayer.architecture import Architecture
          >>> Architecture([(4, 3, 2), (6, (2, 1))]).kernel_shapes(2)
          ((3, 3), (2, 1))
        """
        out = []
        for i, layer in enumerate(self):
            kernel = layer.kernel if isinstance(layer.kernel, tuple) else (layer.kernel,) * ndim
            if len(kernel) != ndim:
                raise ValueError(f"architecture[{i}].kernel must have {ndim} entries for signals with {ndim} "
                                 f"spatial axes, got {layer.kernel!r}")
            out.append(kernel)
        return tuple(out)

    def layer_shapes(self, input_shape) -> Tuple[LayerShape, ...]:
        """The shapes of every layer for inputs of shape ``input_shape`` (module docstring).

        Args:
          input_shape: (C, L) for 1-D signals or (C, H, W) for images, channels first.

        Returns:
          One ``LayerShape(filters, signal, code)`` per layer, D_1 first: the signal of layer i + 1 is the code
          of layer i, and the last code is the deepest representation G_K.

        Raises:
          ValueError / TypeError: a bad ``input_shape``, a kernel given for another number of axes, or a layer
          that does not fit its input (a kernel larger than the signal).

        Example:
          >>> from sparsejax.multilayer.architecture import MNIST_ML_ISTA
          >>> [s.code for s in MNIST_ML_ISTA.layer_shapes((1, 28, 28))]
          [(32, 12, 12), (64, 4, 4), (512, 1, 1)]
        """
        shape = _input_shape(input_shape)
        out, signal = [], shape
        for i, (layer, kernel) in enumerate(zip(self, self.kernel_shapes(len(shape) - 1))):
            filters = (layer.n_filters, signal[0]) + kernel
            try:
                code = tuple(conv_code_shape(filters, signal, stride=layer.stride, boundary="full"))
            except ValueError as e:
                raise ValueError(f"architecture does not fit inputs of shape {shape}: layer {i + 1} (filters "
                                 f"{filters}, stride {layer.stride}) on its input {signal}: {e}") from None
            out.append(LayerShape(filters, signal, code))
            signal = code
        return tuple(out)

    def molecule_sizes(self, ndim: int = 2) -> Tuple[Tuple[int, ...], ...]:
        """Spatial sizes of the molecules, the atoms of D_1, D_1 D_2, ..., D_1 ... D_K: for D_1 ... D_j,
        E_j = k_j and E_l = s_l (E_{l+1} - 1) + k_l for l = j - 1, ..., 1 (the molecules of Sulam, Papyan,
        Romano, Elad, "Multilayer convolutional sparse modeling: pursuit and dictionary learning", IEEE TSP 2018).

        Args:
          ndim: number of spatial axes of the signals (1 or 2).

        Returns:
          One tuple of ``ndim`` sizes per layer.

        Example:
          >>> from sparsejax.multilayer.architecture import MNIST_ML_CSC
          >>> MNIST_ML_CSC.molecule_sizes()
          ((7, 7), (21, 21), (28, 28))
        """
        kernels = self.kernel_shapes(ndim)
        out = []
        for j in range(len(self)):
            size = kernels[j]
            for outer in range(j - 1, -1, -1):
                size = tuple(self[outer].stride * (e - 1) + k for e, k in zip(size, kernels[outer]))
            out.append(size)
        return tuple(out)


MNIST_ML_ISTA = Architecture(((32, 6, 2), (64, 6, 2), (512, 4, 1)))
MNIST_ML_CSC = Architecture(((32, 7, 7), (128, 3, 1), (1024, 2, 1)))
