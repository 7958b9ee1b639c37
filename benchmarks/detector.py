"""The blocking detector d(.) measured: grid confidence and period per codec, step test, d(z) = 0, crops.

Runs :mod:`cisr_lib.models.blocking` as the model does (default thresholds) on

* the astronaut photo bundled with scikit-image, degraded by :func:`cisr_lib.degradations.degrade` at
  x2 (256x256 LR) with no codec (the clean LR image y) and each configuration of ``CONFIGS``:
  :func:`estimate_grid_phase` per axis (phase, period, confidence), the local step test
  :func:`boundary_candidates` alone on the codec's grid lines against the other boundaries (pooled as
  in tests/test_blocking.py::test_step_test_prefers_the_8x8_grid), and the
  fraction of pixels where :func:`blocking_mask` is 0 (the method of notebooks/06_nonlocal_operator.ipynb,
  section 3, there on the JPEG q10 image only);
* square crops of the shared training photos (001-040, :func:`cisr_lib.data.split_photos`), each photo
  degraded whole at x2 and cropped at positions drawn from a generator seeded by (``--seed``, photo
  number), the same positions for every configuration: how often the grid is accepted on a crop.
  Where the shared photos are absent this part is skipped and the JSON and the block say so.

The result is saved in ``benchmarks/detector.json``; ``--render --docs`` writes the block of
docs/model.md from that file (``tests/test_benchmark_blocks.py`` checks that they agree).

Usage (from the repository root)::

    python benchmarks/detector.py --docs          # measure (under a minute on one thread), write the block
    python benchmarks/detector.py --render --docs # only re-render from the saved JSON
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

from blocks import QUICK_HELP, REPO, publish, quick  # benchmarks/blocks.py

TAG = "detector"
SAVED = Path(__file__).resolve().parent / "detector.json"
IMAGE = "astronaut"
SCALE = 2
# (codec, quality); None is the clean LR image y. The paper's ten configurations, plus JPEG q90.
CONFIGS = (None, ("jpeg", 10), ("jpeg", 20), ("jpeg", 30), ("jpeg", 40), ("jpeg", 50), ("jpeg", 90),
           ("webp", 5), ("webp", 10), ("webp", 20), ("webp", 30), ("webp", 40))
CROP_CONFIGS = (None, ("jpeg", 10), ("jpeg", 30), ("jpeg", 50))
CROP_SIDES = (48, 96)  # LR pixels; 48 is the training patch side
CROPS_PER_PHOTO = 100


def _name(config) -> str:
    return "clean" if config is None else f"{ {'jpeg': 'JPEG', 'webp': 'WebP'}.get(config[0], config[0])} q{config[1]}"


def _grid_period(config) -> int:
    """The transform grid the codec codes with: 4 for WebP (VP8 4x4), else 8 (JPEG; the clean image is
    measured on the 8x8 grid a JPEG would use)."""
    return 4 if config is not None and config[0] == "webp" else 8


def _image(hr, config):
    """The LR image of ``hr`` for ``config``: degrade's z, or its clean y when ``config`` is None."""
    from cisr_lib.degradations import degrade

    deg = degrade(hr, SCALE, *(config or ("jpeg", 10)))
    return deg.lr if config is None else deg.z


def _thresholds() -> dict:
    """The default thresholds of the library's detector (what the model uses)."""
    from cisr_lib.models.blocking import detect_blocking_edges

    params = inspect.signature(detect_blocking_edges).parameters
    return {k: params[k].default for k in ("ratio", "min_step", "min_confidence")}


def whole_image(config, hr, min_confidence: float) -> dict:
    """One row of the astronaut table."""
    import torch

    from cisr_lib.convert import uint2tensor4
    from cisr_lib.models.blocking import blocking_mask, boundary_candidates, estimate_grid_phase

    z = uint2tensor4(_image(hr, config))  # (1, 3, H, W) in [0, 1]
    ph = estimate_grid_phase(z)
    vert, horiz = boundary_candidates(z)  # the local step test, no grid gating
    period = _grid_period(config)
    on_v = (torch.arange(vert.shape[-1]) + 1) % period == 0  # boundary j | j+1 starts a block at j+1
    on_h = (torch.arange(horiz.shape[-2]) + 1) % period == 0
    on = torch.cat([vert[..., on_v].flatten(), horiz[:, on_h, :].flatten()]).double().mean()
    off = torch.cat([vert[..., ~on_v].flatten(), horiz[:, ~on_h, :].flatten()]).double().mean()
    d = blocking_mask(z)
    return {"config": _name(config), "size": list(z.shape[-2:]), "grid_period": period,
            "col_phase": int(ph.col), "row_phase": int(ph.row),
            "col_period": int(ph.col_period), "row_period": int(ph.row_period),
            "col_conf": float(ph.col_conf), "row_conf": float(ph.row_conf),
            "col_accepted": bool(ph.col_conf >= min_confidence), "row_accepted": bool(ph.row_conf >= min_confidence),
            "on_grid_flagged": float(on), "off_grid_flagged": float(off),
            "d_zero": float((d < 0.5).double().mean())}


def crops(photos, n_per_photo: int, sides, configs, seed: int, min_confidence: float) -> dict:
    """Grid acceptance on crops: per configuration and side, the fraction of crop axes (rows and
    columns counted apart, as the detector gates them) and of crops (both axes) accepted, and
    ``accepted_right``: of the accepted axes of a compressed crop, the share whose estimated grid is the
    codec's own (period 8, phase -left / -top mod 8); None for the clean image (it has no grid)."""
    import numpy as np
    import torch

    from cisr_lib.convert import uint2tensor4
    from cisr_lib.data import read_image
    from cisr_lib.models.blocking import estimate_grid_phase

    axes = {(c, s): [] for c in map(_name, configs) for s in sides}
    both = {(c, s): [] for c in map(_name, configs) for s in sides}
    right = {(c, s): [] for c in map(_name, configs) for s in sides}  # per accepted axis: the codec's own grid?
    coded = {_name(c): c is not None for c in configs}  # the clean image has no grid to find
    for path in photos:
        hr = read_image(path)
        images = {_name(c): _image(hr, c) for c in configs}
        h, w = next(iter(images.values())).shape[:2]
        rng = np.random.default_rng([seed, int(path.stem)])
        for side in sides:
            tops = rng.integers(0, h - side + 1, n_per_photo)
            lefts = rng.integers(0, w - side + 1, n_per_photo)
            for name, img in images.items():
                z = torch.cat([uint2tensor4(img[t:t + side, l:l + side]) for t, l in zip(tops, lefts)])  # (n, 3, side, side)
                ph = estimate_grid_phase(z)
                col, row = ph.col_conf >= min_confidence, ph.row_conf >= min_confidence
                axes[name, side].append(torch.cat([col, row]))
                both[name, side].append(col & row)
                if coded[name]:  # the codec's 8x8 grid starts at the LR origin: in a crop at (t, l), at -l mod 8
                    ok_col = (ph.col == torch.as_tensor(-lefts % 8)) & (ph.col_period == 8)
                    ok_row = (ph.row == torch.as_tensor(-tops % 8)) & (ph.row_period == 8)
                    right[name, side].append(torch.cat([ok_col, ok_row])[torch.cat([col, row])])
    rows = [{"config": name, "side": side, "n": int(torch.cat(both[name, side]).numel()),
             "axes_accepted": float(torch.cat(axes[name, side]).double().mean()),
             "crops_accepted": float(torch.cat(both[name, side]).double().mean()),
             "accepted_right": _share(right[name, side]) if coded[name] else None}
            for name, side in axes]
    return {"photos": f"{photos[0].stem}-{photos[-1].stem}", "n_photos": len(photos), "per_photo": n_per_photo,
            "seed": seed, "rows": rows}


def _share(parts) -> float | None:
    """The share of True in a list of bool tensors; None when they hold nothing (no axis accepted)."""
    import torch

    flat = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.bool)
    return float(flat.double().mean()) if flat.numel() else None


def measure(small: bool = False, seed: int = 0, photos_root: str | None = None) -> dict:
    """Everything the block shows (``small``: two configurations, two photos, two crops each)."""
    from cisr_lib.data import embedded_images, shared_photos, split_photos
    from cisr_lib.runtime import machine
    from cisr_lib.testset import library_versions

    t0 = time.perf_counter()
    thr = _thresholds()
    hr = embedded_images()[IMAGE]
    configs = CONFIGS[:2] if small else CONFIGS
    rows = [whole_image(c, hr, thr["min_confidence"]) for c in configs]
    for r in rows:
        print(json.dumps(r), flush=True)
    paths = shared_photos(photos_root)
    train = split_photos(paths)[0] if paths else []
    if not train:
        crop = {"skipped": "the shared photos were absent (`cisr_lib.data.shared_photos` found none)"}
    else:
        crop = crops(train[:2] if small else train, 2 if small else CROPS_PER_PHOTO, CROP_SIDES,
                     CROP_CONFIGS[:2] if small else CROP_CONFIGS, seed, thr["min_confidence"])
    return {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "seconds": round(time.perf_counter() - t0, 1),
            "libraries": library_versions(), "image": IMAGE, "scale": SCALE, "thresholds": thr,
            "whole": rows, "crops": crop}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def render(res: dict) -> str:
    """The block of docs/model.md from a saved result."""
    thr = res["thresholds"]
    size = "x".join(map(str, res["whole"][0]["size"]))
    lines = [
        f"Measured by `python benchmarks/detector.py` on {res['date']} ({res['machine']}, {res['seconds']:.0f} s) "
        f"with the library's default thresholds (grid accepted on an axis at confidence >= {thr['min_confidence']:g}; "
        f"step >= {thr['min_step']:g} grey levels and > {thr['ratio']:g}x the larger interior step). "
        f"Whole image: the {res['image']} photo, x{res['scale']} LR ({size}) from `degrade`, clean or compressed. "
        "Step test: `boundary_candidates` alone (no grid gating), share of boundary pixels flagged on the "
        "codec's grid lines (period 8 from the origin; 4 for WebP; the 8x8 lines for the clean image) and on "
        "the other boundaries; d(z) = 0: share of pixels where `blocking_mask` is 0. Phase and period are "
        "estimated on every axis, also where the grid is then rejected; the phase is given modulo 8, so on a "
        "period-4 grid phases p and p + 4 are the same lines (WebP's 0 / 4 below).", "",
        "| image | confidence (cols / rows) | phase (cols / rows) | period (cols / rows) | grid accepted (cols / rows) "
        "| step test on grid | off grid | d(z) = 0 |",
        "|---|---|---|---|---|---|---|---|"]
    yes = {True: "yes", False: "no"}
    for r in res["whole"]:
        lines.append(f"| {r['config']} | {r['col_conf']:.2f} / {r['row_conf']:.2f} "
                     f"| {r['col_phase']} / {r['row_phase']} | {r['col_period']} / {r['row_period']} "
                     f"| {yes[r['col_accepted']]} / {yes[r['row_accepted']]} "
                     f"| {_pct(r['on_grid_flagged'])} | {_pct(r['off_grid_flagged'])} | {_pct(r['d_zero'])} |")
    crop = res["crops"]
    lines.append("")
    if "skipped" in crop:
        lines.append(f"Crops: not measured; {crop['skipped']}.")
        return "\n".join(lines)
    sides = sorted({r["side"] for r in crop["rows"]})
    lines += [
        f"Crops: the training photos {crop['photos']} of the shared folder, each degraded whole at x{res['scale']} "
        f"and cropped at {crop['per_photo']} uniformly random LR positions per photo and side (any grid phase; "
        f"numpy generator seeded by ({crop['seed']}, photo number)), the same positions for every image: "
        f"{crop['n_photos'] * crop['per_photo']} crops per row and side. Share of crop axes (rows and columns "
        "counted apart, as the detector gates them) and of crops (both axes) whose grid is accepted, and of the "
        "accepted axes of a compressed crop, the share whose estimated grid is the codec's own (period 8, phase "
        "-left mod 8 for columns, -top mod 8 for rows: JPEG's blocks start at the LR origin).", "",
        "| image | " + " | ".join(f"{s}x{s}: axes | {s}x{s}: crops | {s}x{s}: right grid" for s in sides) + " |",
        "|---|" + "---|---|---|" * len(sides)]
    by = {(r["config"], r["side"]): r for r in crop["rows"]}
    right = lambda r: "-" if r.get("accepted_right") is None else _pct(r["accepted_right"])  # noqa: E731
    for name in dict.fromkeys(r["config"] for r in crop["rows"]):
        cells = " | ".join(f"{_pct(by[name, s]['axes_accepted'])} | {_pct(by[name, s]['crops_accepted'])} "
                           f"| {right(by[name, s])}" for s in sides)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--render", action="store_true", help="only re-render from the saved JSON")
    ap.add_argument("--docs", action="store_true", help="fill the block of docs/model.md")
    ap.add_argument("--out", default=str(SAVED), help="where the result is saved")
    ap.add_argument("--seed", type=int, default=0, help="seed of the crop positions")
    ap.add_argument("--photos", default=None, help="folder of the shared photos (default: cisr_lib.data.shared_photos)")
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = ap.parse_args(argv)
    if args.quick:
        quick(args)
    if not args.render:
        import torch

        from cisr_lib.files import atomic_write

        torch.set_num_threads(1)  # small tensors: one thread is as fast, and leaves the other core alone
        res = measure(small=args.quick, seed=args.seed, photos_root=args.photos)
        atomic_write(args.out, json.dumps(res, indent=1) + "\n")
    res = json.loads(Path(args.out).read_text())
    return publish(render(res), REPO / "docs" / "model.md", TAG, args.docs)


if __name__ == "__main__":
    sys.exit(main())
