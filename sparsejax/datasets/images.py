"""Bundled data: grey test images and learned convolutional dictionaries, and PNG input/output.

The files are package data (``sparsejax/datasets/files/``, carried by the wheel); ``SPARSEJAX_DATA`` overrides
the location.

    files/images/camera.png                  512x512 grey photograph (CC0; see files/images/README.md)
    files/dictionaries/sporco_convdicts.npz  SPORCO's learned filters 'G_8x8x32', 'G_12x12x36', arrays (h, w, M)
      (Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 2016; SPORCO's
      ``util.convdicts()``, BSD licence, see files/dictionaries/README.md)

Functions:

* ``load_image(name_or_path)`` -> float32 numpy array (H, W) in [0, 1] (colour is converted to grey).
* ``save_image(path, array)`` writes an 8-bit grey PNG (values clipped to [0, 1]).
* ``load_conv_dictionary(name_or_path)`` -> float32 filters (M, 1, h, w), the layout of ``sparsejax.conv.operator``:
  a bundled dictionary by name, or a ``.npz`` file written by ``sparsejax learn --kind conv``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["data_dir", "image_names", "load_image", "save_image", "dictionary_names", "load_conv_dictionary"]

_DICT_FILE = "sporco_convdicts.npz"


def data_dir() -> Path:
    """The data folder: ``$SPARSEJAX_DATA`` if set, else the bundled ``sparsejax/datasets/files``.

    Returns:
      The folder holding ``images/``, ``dictionaries/`` and ``mnist/``.

    Example:
      >>> from sparsejax.datasets.images import data_dir
      >>> sorted(p.name for p in data_dir().iterdir() if p.is_dir())
      ['dictionaries', 'images', 'mnist']
    """
    env = os.environ.get("SPARSEJAX_DATA")
    return Path(env) if env else Path(__file__).resolve().parent / "files"


def _need(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found: {path} is missing (the bundled data is package data in "
            "sparsejax/datasets/files; reinstall sparsejax, or set SPARSEJAX_DATA to a folder that holds it)")
    return path


def image_names() -> list[str]:
    """Names of the bundled images (the PNG file stems of ``data_dir() / "images"``), for ``load_image``.

    Returns:
      The sorted names (empty when the folder is missing).

    Example:
      >>> from sparsejax.datasets.images import image_names
      >>> image_names()
      ['camera']
    """
    folder = data_dir() / "images"
    return sorted(p.stem for p in folder.glob("*.png")) if folder.is_dir() else []


def _resolve_image(name_or_path) -> Path:
    p = Path(name_or_path)
    if p.is_file():
        return p
    s = str(name_or_path)
    if os.sep not in s and "/" not in s:   # a bare name: look in the bundled images
        stem = s[:-4] if s.lower().endswith(".png") else s
        return _need(data_dir() / "images" / f"{stem}.png", f"bundled image {s!r}")
    return _need(p, "image file")


def load_image(name_or_path) -> np.ndarray:
    """Load a bundled image by name (``"camera"``) or any image file by path, as grey float32 in [0, 1].

    8-bit images are divided by 255, 16-bit ones by 65535; colour / palette images are converted to grey
    (ITU-R 601-2 luma, PIL's ``"L"`` mode); an alpha channel is dropped.

    Args:
      name_or_path: a bundled image name (``image_names()``, with or without ``.png``) or a file path.

    Returns:
      numpy float32 array (H, W), values in [0, 1].

    Raises:
      FileNotFoundError naming the path when the file does not exist.

    Example:
      >>> from sparsejax.datasets.images import load_image
      >>> x = load_image("camera")
      >>> x.shape, x.dtype.name, float(x.min()), float(x.max())
      ((512, 512), 'float32', 0.0, 1.0)
    """

    path = _resolve_image(name_or_path)
    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            a = np.asarray(im, dtype=np.float64)
            scale = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
            return np.clip(a / scale, 0.0, 1.0).astype(np.float32)
        if im.mode == "F":
            return np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
        return (np.asarray(im.convert("L"), dtype=np.float32) / 255.0)


def save_image(path, array) -> Path:
    """Save a grey image (H, W) (or (1, H, W)) with values in [0, 1] as an 8-bit PNG; returns the path.

    Values are clipped to [0, 1] and rounded to k / 255. The parent folder is created if needed.

    Args:
      path: the output file.
      array: the image, shape (H, W) or (1, H, W).

    Returns:
      The path written.

    Raises:
      ValueError (naming ``array``) for a wrong shape or non-finite values.

    Example: the round trip through 8 bits is exact to half a grey level.
      >>> import tempfile
      >>> import numpy as np
      >>> from sparsejax.datasets.images import load_image, save_image
      >>> x = load_image("camera")[:64, :64]
      >>> path = save_image(tempfile.mkdtemp() + "/crop.png", x)
      >>> bool(np.max(np.abs(load_image(path) - x)) <= 0.5 / 255)
      True
    """

    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2 or min(a.shape) < 1:
        raise ValueError(f"array must be a grey image of shape (H, W) or (1, H, W), got shape {np.shape(array)}")
    if not np.all(np.isfinite(a)):
        raise ValueError("array contains NaN or infinite values")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8), mode="L").save(path)
    return path


def _dict_file() -> Path:
    return _need(data_dir() / "dictionaries" / _DICT_FILE, "bundled dictionary file")


def dictionary_names() -> list[str]:
    """Names of the bundled convolutional dictionaries, for ``load_conv_dictionary``.

    Returns:
      The sorted names.

    Example:
      >>> from sparsejax.datasets.images import dictionary_names
      >>> dictionary_names()
      ['G_12x12x36', 'G_8x8x32']
    """
    with np.load(_dict_file()) as z:
        return sorted(z.files)


def _load_filters_file(path: Path) -> np.ndarray:
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"dictionary file {path} cannot be read as a .npz / .npy array file ({e})") from e
    if isinstance(z, np.ndarray):
        F, key = z, None
    else:
        with z:
            if "filters" in z.files:
                F, key = np.asarray(z["filters"]), "filters"
            elif "dictionary" in z.files:
                raise ValueError(f"dictionary file {path} holds a dense (patch) dictionary, written by "
                                 "'sparsejax learn --kind dense'; denoise / inpaint need convolutional filters "
                                 "('sparsejax learn --kind conv')")
            else:
                raise ValueError(f"dictionary file {path} has no 'filters' array (it holds {sorted(z.files)}); "
                                 "expected a file written by 'sparsejax learn --kind conv'")
    F = np.asarray(F)
    if F.dtype.kind not in "iuf":
        raise ValueError(f"dictionary file {path}: filters must be real numbers, got dtype {F.dtype}")
    if F.ndim == 3:
        F = F[:, None]
    if F.ndim != 4 or F.shape[1] != 1 or min(F.shape) < 1:
        raise ValueError(f"dictionary file {path}: filters must have shape (M, 1, h, w) or (M, h, w) for grey "
                         f"images, got {F.shape}{'' if key is None else ' (array ' + repr(key) + ')'}")
    F = F.astype(np.float32)
    if not np.all(np.isfinite(F)):
        raise ValueError(f"dictionary file {path}: filters contain NaN or infinite values")
    return np.ascontiguousarray(F)


def load_conv_dictionary(name: str = "G_8x8x32") -> np.ndarray:
    """A convolutional dictionary as filters (M, 1, h, w): a bundled one by name, or a file by path.

    Bundled (SPORCO ``util.convdicts()``): SPORCO stores (h, w, M); the filters are returned as published,
    float32, not renormalised: most have norm 1 to within 2-3 %, the last filter of each is smaller (0.13 in
    G_8x8x32, 0.65 in G_12x12x36). Learned by Wohlberg with SPORCO's convolutional dictionary learning
    ("Efficient algorithms for convolutional sparse representations", IEEE TIP 25(1), 2016).

    A file: a ``.npz`` with a ``filters`` array (M, 1, h, w) or (M, h, w), as ``sparsejax learn --kind conv``
    writes, or a ``.npy`` array of that shape. A path that ends in ``.npz`` / ``.npy`` or names an existing
    file is read as a file; anything else is a bundled name.

    Args:
      name: one of ``dictionary_names()``, or the path of such a file.

    Returns:
      numpy float32 filters (M, 1, h, w).

    Raises:
      ValueError for an unknown name (listing the available ones) or a file without convolutional filters
      (a dense dictionary, a wrong shape, NaN); FileNotFoundError if the file is missing.

    Example:
      >>> import tempfile
      >>> import numpy as np
      >>> from sparsejax.datasets.images import load_conv_dictionary
      >>> f = load_conv_dictionary("G_8x8x32")
      >>> f.shape, round(float(np.linalg.norm(f[0])), 1), round(float(np.linalg.norm(f[-1])), 2)
      ((32, 1, 8, 8), 1.0, 0.13)
      >>> path = tempfile.mkdtemp() + "/filters.npz"
      >>> np.savez(path, filters=f[:4], kind="conv")
      >>> load_conv_dictionary(path).shape
      (4, 1, 8, 8)
    """
    s = str(name)
    p = Path(s)
    if p.is_file() or s.lower().endswith((".npz", ".npy")):
        return _load_filters_file(_need(p, "dictionary file"))
    with np.load(_dict_file()) as z:
        if s not in z.files:
            raise ValueError(f"dictionary must be one of {sorted(z.files)} (bundled dictionaries) or the path of a "
                             f".npz file written by 'sparsejax learn --kind conv', got {s!r}")
        D = np.asarray(z[s], dtype=np.float32)
    if D.ndim != 3:
        raise ValueError(f"dictionary {s!r} has shape {D.shape}, expected (h, w, M)")
    return np.ascontiguousarray(np.transpose(D, (2, 0, 1))[:, None])
