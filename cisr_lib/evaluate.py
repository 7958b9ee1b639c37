"""Evaluation: the numbers of Tables I-II and of supplementary sections 3 and 5, for one method.

Paper Sec. IV-B: every SR result is compared with its uncompressed HR ground truth by PSNR,
SSIM, IFC and SIS (Table I: averages over all test images of a scale; Table II: PSNR per
compression configuration). The online supplementary material adds the artifact reduction of
Module I against the clean LR image (its sec. 3: PSNR and SSIM of the ARM output per
configuration) and the result after each unfolding step (its sec. 5).

:func:`evaluate` runs a method over a test set and returns (and writes) all of these:

* methods: ``"bicubic"`` (MATLAB ``imresize`` of z by the scale), a weights file of
  :mod:`cisr_lib.pretrained` (any variant: PSI, official, the cascade / parallel / plain
  baselines), an ``nn.Module`` called as ``ys, xs = model(z)``, or a dict scale -> either;
* data: a folder written by :func:`cisr_lib.testset.build_test_set` (read back with
  :func:`~cisr_lib.testset.load_test_set`), or clean HR images (a folder, a list of paths or
  arrays, a dict name -> array/path such as :func:`cisr_lib.data.embedded_images`) degraded on
  the fly with the paper's protocol ``z = C D x`` (:func:`cisr_lib.degradations.degrade`, with
  the per-file seed of the test-set builder, so both give the same bytes); both are read by
  :mod:`cisr_lib.eval_data`;
* per image, on the Y channel (MATLAB BT.601) with ``scale`` pixels shaved from every side
  (the settings of :func:`cisr_lib.metrics.evaluate_pair`): PSNR, SSIM, PSNR-B (block
  ``8 * scale``) and, with ``with_ifc=True``, IFC (slow); for a model also the PSNR of every
  unfolding step ``xs[j]`` (supp. 5) and, when the model has an ARM (``ys`` not empty), the
  PSNR / SSIM of ``ys[-1]`` and of ``z`` against the clean LR image ``y`` (supp. 3) plus the
  PSNR of every ``ys[j]``. The LR comparisons use the whole image (no shave), as artifact
  reduction benchmarks do. SIS is not implemented (see :mod:`cisr_lib.metrics`).

Averages: a configuration's value is the mean over its images (Table II), a scale's value the
mean over all its images and configurations (Table I; with the same images in every
configuration this is also the mean of the configuration means). PSNR values are averaged, not
MSEs, as in the paper.

Outputs of ``out_dir``: ``results.json`` (everything, one record per image), ``tables.md``
(Table I / Table II shaped markdown, per-step and artifact-reduction tables) and ``cache.jsonl``
(:mod:`cisr_lib.eval_cache`), one JSON line per computed image, keyed by (method id, scale,
configuration, image name, SHA-256 of the image's HR and z pixels). A rerun into the same folder
reuses every cached record, so an interrupted evaluation resumes where it stopped. The method id of
a weights file contains the SHA-256 of the file (and ``window`` when given), that of an
``nn.Module`` a hash of its class, configuration and state dict: a changed model never reuses stale
numbers. The device is not part of the key (CPU and GPU give the same outputs up to float
round-off); bf16 arithmetic is (the id ends in ``:bf16``), as it changes outputs by more than
round-off (``precision``, see :mod:`cisr_lib.precision`; the default "auto" uses it where the
hardware runs it natively).

Speed: large images with the paper's whole-image non-local search are slow on a CPU. Two
options trade fidelity to the protocol for time, both None by default (the paper's protocol):
``window=R`` bounds the non-local search to a (2R+1)^2 neighbourhood (passed to
:func:`cisr_lib.pretrained.load_model`; it changes the outputs, hence the method id), and
``max_side=N`` evaluates a centre crop of at most N x N HR pixels (see :func:`centre_crop`).

Derived in notebooks/10_evaluation.ipynb
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cisr_lib.eval_cache import EvalCache, input_hash
from cisr_lib.eval_data import EvalData, data_source  # noqa: F401  (data_source: re-exported, its home before eval_data.py)
from cisr_lib.messages import one_line
from cisr_lib.methods import (  # noqa: F401  (BICUBIC, MethodSpec, method_id: re-exported)
    BICUBIC,
    MethodSpec,
    PathLike,
    is_module,
    load_method,
    method_id,
    method_label,
    pick,
)
from cisr_lib.report import markdown_report, table_ar, table_i, table_ii, table_steps  # noqa: F401

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cisr_lib.testset import TestSample

__all__ = [
    "FORMAT",
    "CACHE_FILE",
    "RESULTS_FILE",
    "TABLES_FILE",
    "evaluate",
    "centre_crop",
    "data_source",
    "method_id",
    "table_i",
    "table_ii",
    "table_steps",
    "table_ar",
    "markdown_report",
]

FORMAT = "cisr-eval/1"
CACHE_FILE = "cache.jsonl"
RESULTS_FILE = "results.json"
TABLES_FILE = "tables.md"

# torch, OpenCV and the metrics are imported inside the functions that use them, so that
# ``cisr --help`` and the other subcommands (which import this module to register ``eval``)
# stay fast.


def __getattr__(name: str):
    """``centre_crop`` moved to :mod:`cisr_lib.data`; re-exported lazily (data imports torch, which
    this module does not import at the top, so that ``cisr --help`` stays fast)."""
    if name == "centre_crop":
        from cisr_lib.data import centre_crop

        return centre_crop
    raise AttributeError(f"module 'cisr_lib.evaluate' has no attribute {name!r}")


# Running a method.


def _run(model: nn.Module | None, z: np.ndarray, scale: int, device: torch.device,
         precision: str = "fp32") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(ys, xs) as uint8 images: the model's J estimates, or ([], [bicubic(z)])."""
    import torch

    from cisr_lib.convert import tensor2uint, uint2tensor4
    from cisr_lib.degradations import imresize
    from cisr_lib.precision import autocast, memory_format

    if model is None:
        return [], [imresize(z, scale)]  # MATLAB bicubic up-scaling of the compressed image
    with torch.no_grad(), autocast(precision, device):
        zt = uint2tensor4(z).to(device).contiguous(memory_format=memory_format(device))  # (1, 3, h, w)
        ys, xs = model(zt)  # J x (1, 3, h, w), J x (1, 3, sh, sw)
    return [tensor2uint(y) for y in ys], [tensor2uint(x) for x in xs]


def _metrics(smp: TestSample, ys: list[np.ndarray], xs: list[np.ndarray], scale: int, is_model: bool,
             with_ifc: bool) -> dict[str, Any]:
    """Every metric of one image (Y channel; SR metrics shave ``scale`` pixels, LR ones none)."""
    from cisr_lib.metrics import ifc, psnr, psnr_b, ssim

    sr = xs[-1]
    rec: dict[str, Any] = {
        "psnr": psnr(sr, smp.hr, scale),
        "ssim": ssim(sr, smp.hr, scale),
        "psnr_b": psnr_b(sr, smp.hr, scale, block=8 * scale),  # the 8x8 codec grid, up-scaled
    }
    if with_ifc:
        rec["ifc"] = ifc(sr, smp.hr, crop_border=scale)
    if is_model:
        rec["steps_psnr"] = [psnr(x, smp.hr, scale) for x in xs[:-1]] + [rec["psnr"]]  # supp. 5
    if ys:  # supp. 3: ARM output y_J and the input z, both against the clean LR image y
        rec["ar"] = {
            "psnr": psnr(ys[-1], smp.lr, 0),
            "ssim": ssim(ys[-1], smp.lr, 0),
            "z_psnr": psnr(smp.z, smp.lr, 0),
            "z_ssim": ssim(smp.z, smp.lr, 0),
            "steps_psnr": [psnr(y, smp.lr, 0) for y in ys],
        }
    return rec


# Averages.


def _mean_list(lists: list[list[float]]) -> list[float] | None:
    if not lists or len({len(v) for v in lists}) != 1:
        return None
    return [float(x) for x in np.mean(np.asarray(lists, dtype=np.float64), axis=0)]


def _summary(records: list[dict]) -> dict[str, Any]:
    """Means over images: psnr, ssim, psnr_b, ifc, steps_psnr and ar (when every record has them)."""
    out: dict[str, Any] = {"n": len(records)}
    for k in ("psnr", "ssim", "psnr_b", "ifc"):
        if records and all(k in r for r in records):
            out[k] = float(np.mean([r[k] for r in records]))
    if records and all("steps_psnr" in r for r in records):
        steps = _mean_list([r["steps_psnr"] for r in records])
        if steps is not None:
            out["steps_psnr"] = steps
    if records and all("ar" in r for r in records):
        ar = {k: float(np.mean([r["ar"][k] for r in records])) for k in ("psnr", "ssim", "z_psnr", "z_ssim")}
        steps = _mean_list([r["ar"]["steps_psnr"] for r in records])
        if steps is not None:
            ar["steps_psnr"] = steps
        out["ar"] = ar
    return out


def normalise_configs(configs: Sequence[str | tuple[str, int]] | None) -> list[str]:
    """Configuration names ("jpeg10", ...) from names or (codec, quality) pairs; None: the paper's 10."""
    from cisr_lib.degradations import PAPER_CONFIGS, check_configs, config_name, parse_config

    names = []
    configs = PAPER_CONFIGS if configs is None else configs
    for c in configs:
        pair = parse_config(c) if isinstance(c, str) else check_configs([c])[0]
        names.append(config_name(*pair))
    if not names:
        raise ValueError("configs is empty")
    if len(set(names)) != len(names):
        raise ValueError(f"a configuration is repeated in {names}")
    return names


# The evaluation.


def evaluate(
    method: MethodSpec,
    data: PathLike | Sequence[Any] | Mapping[str, Any],
    scales: Sequence[int] = (2, 3, 4),
    configs: Sequence[str | tuple[str, int]] | None = None,
    out_dir: PathLike | None = None,
    *,
    with_ifc: bool = False,
    window: int | None = None,
    max_side: int | None = None,
    device: str | torch.device = "auto",
    precision: str | None = None,
    label: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a method on every image x scale x configuration (Tables I-II, supp. 3 and 5).

    Args:
        method: ``"bicubic"``; a weights file (:func:`cisr_lib.pretrained.load_model`, any variant);
            an ``nn.Module`` returning ``(ys, xs)`` (moved to ``device`` and set to eval mode);
            or a dict scale -> weights path / module for several scales.
        data: a test-set folder (holding ``manifest.json``), a folder of clean HR images, a list
            of paths / uint8 HxWx3 RGB arrays, or a dict name -> array/path.
        scales: integer scales to evaluate (default: the paper's 2, 3, 4).
        configs: configuration names (``"jpeg10"``) or (codec, quality) pairs (default: the
            paper's 10, :data:`cisr_lib.degradations.PAPER_CONFIGS`).
        out_dir: folder for ``results.json``, ``tables.md`` and the resume cache ``cache.jsonl``
            (created if needed); None keeps everything in memory (no resume).
        with_ifc: also compute IFC (slow: seconds per image).
        window: non-local search radius for a weights file (None: the whole image, the paper's
            choice). A module is used as built; pass ``window`` to ``build_model`` instead.
        max_side: evaluate a centre crop of at most ``max_side`` x ``max_side`` HR pixels (None:
            whole images, the paper's protocol). Clean images are cropped before degradation
            (:func:`centre_crop`); the triples of a test-set folder are cropped on the LR grid,
            so z keeps its stored codec bytes (the two crops differ, and so do their numbers).
        device: ``"auto"`` (CUDA, MPS, then CPU) or a torch device.
        precision: "auto", "fp32" or "bf16" (None: the process default, see
            :mod:`cisr_lib.precision`); bf16 results are cached under their own method id.
        label: method name in the tables (default: "Bicubic", the weights file stem, or the
            module's configuration name and variant).
        progress: print one line per scale and configuration.

    Returns:
        A JSON-able dict: ``format``, ``label``, ``methods`` (scale -> method id), ``data``,
        ``settings``, ``scales``, ``configs``, ``per_scale`` (scale -> means, Table I),
        ``per_config`` (scale -> config -> means, Table II) and ``records`` (one per image: psnr,
        ssim, psnr_b, [ifc], for models ``steps_psnr`` (J values) and, with an ARM, ``ar``).
        Scales are string keys (``"2"``) as JSON requires.

    Raises:
        ValueError: bad scales, configurations, ``max_side``, ``window`` with a module, a module
            of another scale, or a scale missing from a method dict.
        FileNotFoundError: a missing weights file or data folder.
        CheckpointError: a weights file that is corrupt or for another scale.
        TestSetError: a test-set folder without this scale / configuration, or tampered.
    """
    import torch

    from cisr_lib.degradations import check_scale
    from cisr_lib.imagewrite import atomic_write_bytes
    from cisr_lib.device import select_device

    scales = [check_scale(s) for s in scales]
    if not scales or len(set(scales)) != len(scales):
        raise ValueError(f"scales must be distinct and not empty, got {scales}")
    cfgs = normalise_configs(configs)
    if max_side is not None:
        from cisr_lib.data import crop_side

        for s in scales:
            crop_side(max_side, s)
    if window is not None and (isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1):
        raise ValueError(f"window must be a search radius >= 1 or None (the whole image), got {window!r}")
    if isinstance(method, str) and method == BICUBIC and window is not None:
        raise ValueError("window applies to a model, not to bicubic")
    if window is not None and any(is_module(pick(method, s)) for s in scales):
        raise ValueError("window applies when loading a weights file; build the module with window=... instead")
    dev = select_device(str(device)) if not isinstance(device, torch.device) else device
    from cisr_lib.precision import describe, resolve as resolve_precision

    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    cache = EvalCache(out / CACHE_FILE if out is not None else None)
    source = EvalData(data, max_side)
    model_method = not (isinstance(method, str) and method == BICUBIC)
    prec = resolve_precision(precision, dev) if model_method else "fp32"  # bicubic is numpy float64
    ids = {s: method_id(method, s, window, prec) for s in scales}
    labels = {method_label(method, s) for s in scales}
    name = label or " / ".join(sorted(labels))

    records: list[dict] = []
    per_config: dict[str, dict[str, dict]] = {}
    per_scale: dict[str, dict] = {}
    for s in scales:
        model = None
        loaded = False
        scale_records = []
        for cfg in cfgs:
            cfg_records, computed = [], 0
            for smp in source.samples(s, cfg):
                key = (ids[s], s, cfg, smp.name, input_hash(smp))
                rec = cache.get(key, with_ifc)
                if rec is None:
                    if not loaded:
                        model, loaded = load_method(method, s, window, dev), True
                    t0 = time.perf_counter()
                    try:
                        ys, xs = _run(model, smp.z, s, dev, prec)
                        seconds = time.perf_counter() - t0
                        rec = dict(zip(EvalCache.KEY, key))
                        rec.update(hr_shape=list(smp.hr.shape[:2]), seconds=round(seconds, 4))
                        rec.update(_metrics(smp, ys, xs, s, model is not None, with_ifc))
                    except ValueError as exc:  # too small an image, a compressed image of the wrong size
                        raise ValueError(f"image {smp.name}, x{s} {cfg} (HR {smp.hr.shape[1]}x{smp.hr.shape[0]}, "
                                         f"z {smp.z.shape[1]}x{smp.z.shape[0]}): {one_line(exc)}") from None
                    cache.put(rec)
                    computed += 1
                if not with_ifc:
                    rec = {k: v for k, v in rec.items() if k != "ifc"}
                cfg_records.append(rec)
            if not cfg_records:
                raise ValueError(f"no test images for x{s} {cfg}")
            per_config.setdefault(str(s), {})[cfg] = _summary(cfg_records)
            scale_records += cfg_records
            if progress:
                m = per_config[str(s)][cfg]
                print(f"x{s} {cfg}: PSNR-Y {m['psnr']:.2f} dB, SSIM-Y {m['ssim']:.4f} over {m['n']} images "
                      f"({computed} computed, {m['n'] - computed} cached)", flush=True)
        per_scale[str(s)] = _summary(scale_records)
        records += scale_records

    result = {
        "format": FORMAT,
        "label": name,
        "methods": {str(s): ids[s] for s in scales},
        "data": source.description,
        "settings": {"max_side": max_side, "window": window, "ifc": with_ifc, "device": str(dev),
                     "precision": describe(precision, dev) if model_method else "float64 (bicubic)",
                     "y_channel": "MATLAB BT.601 rgb2ycbcr", "shave": "scale (SR), 0 (LR)",
                     "psnr_b_block": "8 * scale"},
        "scales": scales,
        "configs": cfgs,
        "per_scale": per_scale,
        "per_config": per_config,
        "records": records,
    }
    if out is not None:
        atomic_write_bytes(out / RESULTS_FILE, (json.dumps(result, indent=1) + "\n").encode(), overwrite=True)
        atomic_write_bytes(out / TABLES_FILE, markdown_report(result).encode(), overwrite=True)
    return result
