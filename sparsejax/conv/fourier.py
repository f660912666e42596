"""Fourier-domain helpers of the convolutional solvers: real FFTs over the trailing spatial axes, Parseval norms.

For a real array x with spatial size N (the last ``len(N)`` axes), ``rfft(x, N)`` is the half spectrum
``jnp.fft.rfftn`` over those axes (zero-padded or cropped to N), and ``irfft`` its inverse. ``fsq`` computes
||x||_2^2 from the half spectrum with the Hermitian weights (Parseval):

    ||x||_2^2 = (1 / prod N) sum_f w_f |X_f|^2,  w_f = 1 on the DC and Nyquist bins, 2 elsewhere.

Used by ``sparsejax.conv.operator`` (FFT convolution), ``sparsejax.pursuit.csc`` (the Fourier ADMM of
Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 2016) and
``sparsejax.learn.conv`` (the dictionary update).

Example:
    >>> import jax.numpy as jnp
    >>> from sparsejax.conv.fourier import fsq, irfft, rfft
    >>> x = jnp.arange(12.0).reshape(3, 4)
    >>> bool(jnp.allclose(irfft(rfft(x, (4,)), (4,)), x, atol=1e-5))
    True
    >>> bool(jnp.allclose(fsq(rfft(x, (3, 4)), (3, 4)), jnp.sum(x * x), rtol=1e-5))
    True
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["rfft", "irfft", "sq", "fsq", "psum"]


def rfft(x: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """Half-spectrum real FFT of ``x`` over its last ``len(sizes)`` axes, padded or cropped to ``sizes``.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.conv.fourier import rfft
      >>> rfft(jnp.ones((2, 3)), (4,)).shape, rfft(jnp.ones(4), (4,)).real.tolist()
      ((2, 3), [4.0, 0.0, 0.0])
    """
    d = len(sizes)
    return jnp.fft.rfftn(x, s=tuple(sizes), axes=tuple(range(-d, 0)))


def irfft(x: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """Inverse of ``rfft``: the real array of spatial size ``sizes`` whose half spectrum is ``x``.

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.conv.fourier import irfft, rfft
      >>> irfft(rfft(jnp.arange(5.0), (5,)), (5,)).round(4).tolist()
      [0.0, 1.0, 2.0, 3.0, 4.0]
    """
    d = len(sizes)
    return jnp.fft.irfftn(x, s=tuple(sizes), axes=tuple(range(-d, 0)))


def sq(x: jax.Array) -> jax.Array:
    """sum(x * x): the squared l2 norm of a real array (all axes).

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.conv.fourier import sq
      >>> float(sq(jnp.array([[3.0], [4.0]])))
      25.0
    """
    return jnp.sum(x * x)


def fsq(Xf: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """||x||_2^2 of the real array of spatial size ``sizes`` whose half spectrum is ``Xf`` (Parseval).

    Example:
      >>> import jax.numpy as jnp
      >>> from sparsejax.conv.fourier import fsq, rfft
      >>> x = jnp.array([1.0, -2.0, 0.5, 3.0, 1.0])
      >>> round(float(fsq(rfft(x, (5,)), (5,))), 4), float(jnp.sum(x * x))
      (15.25, 15.25)
    """
    L = Xf.shape[-1]
    w = np.full(L, 2.0)
    w[0] = 1.0
    if sizes[-1] % 2 == 0:
        w[-1] = 1.0
    w = jnp.asarray(w, Xf.real.dtype).reshape((1,) * (Xf.ndim - 1) + (L,))
    return jnp.sum(w * (Xf.real ** 2 + Xf.imag ** 2)) / math.prod(sizes)


def psum(x: jax.Array, axis: Optional[str]) -> jax.Array:
    """``lax.psum(x, axis)`` inside a ``shard_map`` over mesh axis ``axis``; ``x`` itself when ``axis`` is None.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from sparsejax.conv.fourier import psum
      >>> float(psum(jnp.asarray(2.0), None))
      2.0
      >>> jax.vmap(lambda x: psum(x, "i"), axis_name="i")(jnp.arange(3.0)).tolist()
      [3.0, 3.0, 3.0]
    """
    return x if axis is None else jax.lax.psum(x, axis)
