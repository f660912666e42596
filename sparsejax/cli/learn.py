"""The ``sparsejax learn`` subcommand: learn a dense (patch) or convolutional dictionary from grey images.

    sparsejax learn [IMAGES] [--kind conv|dense] [--atoms M] [--size K] [--lam LAM] [--steps N]
                    [--checkpoint-dir DIR] [--out FILE.npz] [--crop PX] [--max-images N] [--method NAME]
                    [--sparsity S] [--seed N] [--color] [--force-resume] [--quiet]

IMAGES is a folder of PNG files, one PNG file, or omitted (the bundled ``camera`` image). Images are loaded grey
in [0, 1] (``sparsejax.datasets.images.load_image``), centre-cropped to a common size (``--crop``, default the
smallest image, capped at 256 pixels so that the default run takes seconds to minutes on a CPU).

* ``--kind conv`` (default): the images are high-passed (``sparsejax.imaging.tikhonov_split``, weight 5, as
  SPORCO's examples) and ``sparsejax.learn.conv.learn_conv_dictionary`` learns M filters K x K (method "admm"
  or "optax"; Wohlberg, "Efficient algorithms for convolutional sparse representations", IEEE TIP 2016).
  Saved: ``filters`` (M, 1, K, K). With ``--color`` the images are loaded in RGB, each channel high-passed, and
  a multi-channel (colour) dictionary is learned (``multichannel=True``: filters (M, 3, K, K) whose channels
  share one coefficient map; Wohlberg, "Convolutional sparse representation of color images", IEEE SSIAI 2016);
  the PNG of the filters is in colour.
* ``--kind dense``: K x K patches (mean removed, at most 20,000, drawn at random) and
  ``sparsejax.learn.dense.learn_dictionary`` (method "ksvd" by default with ``--sparsity`` atoms per patch,
  default 4; Aharon, Elad & Bruckstein, "K-SVD", IEEE TSP 2006; "online" / "optax" use ``--lam``). Saved:
  ``dictionary`` (K*K, M), atoms as columns.

Both save FILE.npz (the dictionary, ``loss`` history, kind, lam, size) and FILE.png (the atoms as an image grid);
``sparsejax denoise / inpaint --dict FILE.npz`` read a conv one. ``--out`` must end in ``.npz`` or have no suffix
(``.npz`` is added); its folder and ``--checkpoint-dir`` are checked for writing before anything is computed.

``--checkpoint-dir`` makes the run resumable (rerun the same command to continue). The run's settings (kind,
atoms, size, lam, method, sparsity, seed, crop, the image files and a hash of their pixels) are recorded in the
checkpoints; rerunning with other settings into the same folder is refused with a message naming them
(``--force-resume`` continues the recorded run anyway). An unreadable newest checkpoint is skipped with a warning.

Exit status: 0 written, 2 bad input (no image found, bad sizes or values, an output that cannot be written, a
checkpoint folder of another run), 3 the run diverged (nothing written), 4 a checkpoint or the output could not
be written during the run.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from sparsejax.datasets import images as data
from sparsejax.imaging import tikhonov_split
from sparsejax.learn.checkpoint import CheckpointWriteError
from sparsejax.learn.conv import learn_conv_dictionary, save_filters_png
from sparsejax.learn.dense import learn_dictionary
from sparsejax.learn.loop import run_config

__all__ = ["add_learn_parser", "run_learn", "output_problem", "folder_problem"]


def folder_problem(folder, what: str):
    """Why files cannot be written into ``folder`` (None when they can), checked by creating and deleting a probe
    file; a folder that does not exist yet is checked through its nearest existing parent.

    Args:
      folder: the folder.
      what: how to name it in the message (e.g. "--checkpoint-dir").

    Returns:
      None, or a one-line reason.

    Example:
      >>> import tempfile
      >>> from pathlib import Path
      >>> from sparsejax.cli.learn import folder_problem
      >>> d = Path(tempfile.mkdtemp())
      >>> folder_problem(d / "new" / "sub", "--out"), (d / "new").exists()
      (None, False)
      >>> _ = (d / "file.txt").write_text("x")
      >>> folder_problem(d / "file.txt" / "sub", "--out")  # doctest: +ELLIPSIS
      '--out: .../file.txt is a file, not a folder'
    """
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"{what}: {probe} is a file, not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".sparsejax_probe_"):
            pass
    except OSError as e:
        return f"{what}: cannot write into folder {probe} ({e.strerror or e})"
    return None


def output_problem(path, suffixes, what: str):
    """Why the output file ``path`` cannot be written (None when it can): its suffix must be one of ``suffixes``
    (case-insensitive), it must not be a folder, and its folder must be writable (``folder_problem``).

    Args:
      path: the output file.
      suffixes: the accepted suffixes (e.g. (".png",)).
      what: how to name it in the message.

    Returns:
      None, or a one-line reason.

    Example:
      >>> from sparsejax.cli.learn import output_problem
      >>> output_problem("out.txt", (".png",), "OUT")
      "OUT must end in .png, got 'out.txt'"
    """
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        return f"{what} must end in {' / '.join(suffixes)}, got {str(path)!r}"
    if p.is_dir():
        return f"{what} {p} is a folder, expected a file name"
    if p.exists() and not os.access(p, os.W_OK):
        return f"{what} {p} exists and is not writable"
    return folder_problem(p.parent, what)

_MAX_PATCHES = 20000


def add_learn_parser(subparsers):
    """Add the ``learn`` subcommand (the options of the module docstring) to an argparse ``subparsers`` object.

    Args:
      subparsers: from ``argparse.ArgumentParser.add_subparsers``.

    Returns:
      The ``learn`` parser, its ``func`` default set to ``run_learn``.

    Example:
      >>> import argparse
      >>> from sparsejax.cli.learn import add_learn_parser
      >>> sub = argparse.ArgumentParser(prog="sparsejax").add_subparsers(dest="command")
      >>> args = add_learn_parser(sub).parse_args(["--kind", "dense", "--atoms", "16"])
      >>> args.kind, args.atoms, args.size, args.func.__name__
      ('dense', 16, 8, 'run_learn')
    """
    p = subparsers.add_parser("learn", help="learn a dense or convolutional dictionary from images (PNG)")
    p.add_argument("images", nargs="?", default=None, metavar="IMAGES",
                   help="a folder of PNG images or one PNG (default: the bundled camera.png)")
    p.add_argument("--kind", choices=("conv", "dense"), default="conv", help="dictionary kind (default conv)")
    p.add_argument("--atoms", type=int, default=32, help="number of filters / atoms (default 32)")
    p.add_argument("--size", type=int, default=8, help="filter / patch size K (K x K, default 8)")
    p.add_argument("--lam", type=float, default=0.2, help="l1 weight (conv; dense online/optax) (default 0.2)")
    p.add_argument("--steps", type=int, default=100, help="learning steps (default 100)")
    p.add_argument("--checkpoint-dir", default=None, help="checkpoint folder (resume by rerunning)")
    p.add_argument("--out", default="dictionary.npz", help="output .npz (a .png of the atoms is written beside it)")
    p.add_argument("--crop", type=int, default=None,
                   help="centre-crop images to PX x PX (default: the smallest image side, at most 256)")
    p.add_argument("--max-images", type=int, default=8, help="use at most this many images (default 8)")
    p.add_argument("--method", default=None,
                   help="conv: admm (default) or optax; dense: ksvd (default), mod, online or optax")
    p.add_argument("--sparsity", type=int, default=None, help="dense ksvd/mod: atoms per patch (default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--color", "--colour", dest="color", action="store_true",
                   help="conv: learn a colour (3-channel) dictionary from the RGB images (PNG of colour filters)")
    p.add_argument("--force-resume", action="store_true",
                   help="resume the checkpoints in --checkpoint-dir even if they were written with other settings")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_learn)
    return p


def _error(msg) -> int:
    print(f"sparsejax learn: error: {msg}", file=sys.stderr)
    return 2


def _find_images(spec, max_images):
    if max_images < 1:
        raise ValueError(f"--max-images must be >= 1, got {max_images}")
    if spec is None:
        return [data.data_dir() / "images" / "camera.png"]
    p = Path(spec)
    if p.is_dir():
        files = sorted(q for q in p.iterdir() if q.suffix.lower() == ".png" and q.is_file())
        if not files:
            raise FileNotFoundError(f"no PNG image in folder {p}")
        return files[:max_images]
    if p.is_file():
        return [p]
    raise FileNotFoundError(f"image folder or file {p} does not exist")


def _load_rgb(path) -> np.ndarray:
    """An image file as float32 RGB (3, H, W) in [0, 1] (grey images repeated on the three channels)."""
    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return np.ascontiguousarray(np.moveaxis(a, -1, 0))


def _load(args, files):
    color = getattr(args, "color", False)
    imgs = [_load_rgb(f) if color else data.load_image(f) for f in files]
    side = min(min(im.shape[-2:]) for im in imgs)
    crop = min(side, 256) if args.crop is None else args.crop
    if crop < 1 or crop > side:
        raise ValueError(f"--crop must lie in [1, {side}] (the smallest image side), got {crop}")
    out = []
    for im in imgs:
        y, x = (im.shape[-2] - crop) // 2, (im.shape[-1] - crop) // 2
        out.append(im[..., y:y + crop, x:x + crop])
    return np.stack(out).astype(np.float32)


def _patches(imgs, size, key):
    H, W = imgs.shape[1:]
    if size > min(H, W):
        raise ValueError(f"--size {size} is larger than the images ({H} x {W})")
    P = sliding_window_view(imgs, (size, size), axis=(1, 2)).reshape(-1, size * size)
    if P.shape[0] > _MAX_PATCHES:
        idx = np.asarray(jax.random.choice(key, P.shape[0], (_MAX_PATCHES,), replace=False))
        P = P[np.sort(idx)]
    return (P - P.mean(axis=1, keepdims=True)).astype(np.float32)


def run_learn(args) -> int:
    """Run ``sparsejax learn``: load the images, learn the dictionary, save FILE.npz and FILE.png.

    Args:
      args: the parsed options of ``add_learn_parser``.

    Returns:
      The exit status: 0 written, 2 bad input (no image found, bad sizes or values, an output that cannot be
      written, a checkpoint folder of another run), 3 the run diverged, 4 a checkpoint or the output could not
      be written during the run.

    Example:
      >>> import argparse
      >>> from sparsejax.cli.learn import add_learn_parser, run_learn
      >>> sub = argparse.ArgumentParser(prog="sparsejax").add_subparsers(dest="command")
      >>> run_learn(add_learn_parser(sub).parse_args(["no_such_folder"]))
      2
    """
    out = Path(args.out)
    if out.suffix == "":
        out = out.with_name(out.name + ".npz")
    problem = output_problem(out, (".npz",), "--out") or output_problem(out.with_suffix(".png"), (".png",), "--out")
    if problem is None and args.checkpoint_dir is not None:
        problem = folder_problem(args.checkpoint_dir, "--checkpoint-dir")
    if problem:
        return _error(problem if "end in" not in problem else
                      f"--out must name a .npz file (or a prefix without suffix), got {args.out!r}")
    color = bool(getattr(args, "color", False))
    if color and args.kind != "conv":
        return _error("--color learns a colour convolutional dictionary: it needs --kind conv")
    try:
        files = _find_images(args.images, args.max_images)
        imgs = _load(args, files)
    except (FileNotFoundError, ValueError, OSError) as e:
        return _error(e)
    key = jax.random.PRNGKey(args.seed)
    progress = not args.quiet
    settings = {"command": "sparsejax learn", "kind": args.kind, "atoms": args.atoms, "size": args.size,
                "lam": args.lam, "method": args.method, "sparsity": args.sparsity, "seed": args.seed,
                "crop": int(imgs.shape[-1]), "image_files": [Path(f).name for f in files], "images": imgs}
    if color:                   # recorded only when set: checkpoints of grey runs keep resuming
        settings["color"] = True
    resume = "force" if getattr(args, "force_resume", False) else True
    print(f"learn: {imgs.shape[0]} {'colour ' if color else ''}image(s) {imgs.shape[-2]}x{imgs.shape[-1]}, "
          f"{args.kind} dictionary of "
          f"{args.atoms} atoms {args.size}x{args.size}, {args.steps} steps ...", file=sys.stderr, flush=True)
    t0 = time.time()
    try:
        with run_config(settings):
            if args.kind == "conv":
                if color:       # each channel high-passed: (K, 3, H, W)
                    high = np.stack([np.stack([np.asarray(tikhonov_split(ch, 5.0)[1]) for ch in im]) for im in imgs])
                else:
                    high = np.stack([np.asarray(tikhonov_split(im, 5.0)[1]) for im in imgs])
                res = learn_conv_dictionary(high, args.atoms, args.size, args.lam, method=args.method or "admm",
                                            n_steps=args.steps, key=key, checkpoint_dir=args.checkpoint_dir,
                                            resume=resume, progress=progress, multichannel=color)
                loop, atoms = res.loop, np.asarray(res.filters)
                saved = {"filters": atoms}
                grid = atoms
            else:
                method = args.method or "ksvd"
                k1, k2 = jax.random.split(key)
                Y = _patches(imgs, args.size, k1)
                kw = {}
                if method in ("ksvd", "mod") or args.sparsity is not None:
                    kw["sparsity"] = args.sparsity if args.sparsity is not None else min(4, args.size * args.size)
                if method in ("online", "optax") and args.sparsity is None:
                    kw["lam"] = args.lam
                res = learn_dictionary(Y, args.atoms, method=method, n_steps=args.steps, key=k2,
                                       checkpoint_dir=args.checkpoint_dir, resume=resume, progress=progress,
                                       return_codes=False, **kw)
                loop, D = res.loop, np.asarray(res.dictionary)
                saved = {"dictionary": D}
                grid = D.T.reshape(args.atoms, 1, args.size, args.size)
    except CheckpointWriteError as e:
        print(f"sparsejax learn: error: {e}", file=sys.stderr)
        return 4
    except (ValueError, TypeError) as e:
        return _error(e)
    if loop.status == "diverged":
        print(f"sparsejax learn: {loop.message}; nothing written", file=sys.stderr)
        return 3
    saved.update(loss=np.asarray(loop.history.get("loss", np.zeros(0))), kind=args.kind, lam=args.lam, color=color,
                 size=args.size, steps=loop.steps)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, **saved)
        png = save_filters_png(out.with_suffix(".png"), grid, scale=4)
    except OSError as e:
        print(f"sparsejax learn: error: cannot write {out}: {e}", file=sys.stderr)
        return 4
    loss = saved["loss"]
    print(f"learn: {loop.message}; final loss {loss[-1] if loss.size else float('nan'):.5g}, "
          f"{time.time() - t0:.1f} s -> {out}, {png}", file=sys.stderr)
    return 0
