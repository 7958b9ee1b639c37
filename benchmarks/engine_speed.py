"""Inference and training speed of the engine: the table in the README's "Benchmarks" section.

* **Inference** (`cisr_lib.upscale`, the code path of `cisr upscale`): seconds per output
  megapixel and peak resident memory, for ``micro`` and ``tiny`` at x2 and x4, on the whole image
  (the non-local search covers every pixel, so its cost grows with the square of the image) and with
  tiles (``--tile``, bounded memory, cost linear in the image), with and without a windowed search.
  Speed does not depend on the weight values, so untrained models of each size are used; each run
  happens in a fresh subprocess so that the peak RSS is its own.
* **Training** (`cisr_lib.train.train`): steps per second at the ``cpu`` preset's batch and patch
  (8 LR patches of 32x32), ``end_to_end`` and ``truncated`` unfolding, on the embedded photos.

Usage (from the repository root; add ``--readme`` to replace the table in README.md)::

    python benchmarks/engine_speed.py --threads 2
    python benchmarks/engine_speed.py --quick            # one small case of each, to check the script
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARK_START, MARK_END = "<!-- engine-speed:start -->", "<!-- engine-speed:end -->"


def _inference_case(model: str, scale: int, size: int, tile: int | None, window: int | None, threads: int) -> dict:
    import torch

    import cisr_lib
    from cisr_lib.data import embedded_images
    from cisr_lib.degradations import compress, imresize
    from cisr_lib.models import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_model(model, scale)
    hr = embedded_images()["astronaut"]  # 512 x 512: LR = JPEG q20 of a bicubic x1/2, cropped to size
    image = compress(imresize(hr, 0.5)[:size, :size] if size <= 256 else imresize(hr, size / 512), "jpeg", 20)
    t0 = time.perf_counter()
    out = cisr_lib.upscale(image, scale, weights=net, tile=tile, tile_overlap=8 if tile else 16, window=window,
                           device="cpu")
    seconds = time.perf_counter() - t0
    return {"model": model, "scale": scale, "lr_size": size, "tile": tile, "window": window,
            "seconds": seconds, "out_mp": out.shape[0] * out.shape[1] / 1e6,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _training_case(model: str, unfolding: str, steps: int, threads: int) -> dict:
    from cisr_lib.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(model=model, scale=2, preset="cpu", max_steps=steps + 1, val_every=10**6,
                          unfolding=unfolding, data="embedded", threads=threads, ckpt_every=10**6)
        train(cfg, tmp, progress=False)
        records = [json.loads(line) for line in (Path(tmp) / "log.jsonl").read_text().splitlines()]
    elapsed = [r["elapsed"] for r in records if "loss" in r]
    per_step = (elapsed[-1] - elapsed[0]) / (len(elapsed) - 1)  # the first step (warm-up) is left out
    return {"model": model, "unfolding": unfolding, "steps": steps, "seconds_per_step": per_step,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _subprocess(kind: str, kwargs: dict) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / 'benchmarks')!r});"
            f"import engine_speed as b; print('RESULT' + json.dumps(b._{kind}_case(**{kwargs!r})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")]
    if r.returncode or not lines:
        raise RuntimeError(f"{kind} {kwargs} failed:\n{r.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT"):])


def table(inference: list[dict], training: list[dict], threads: int, load: float) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [f"Measured by `python benchmarks/engine_speed.py --threads {threads}` on {time.strftime('%Y-%m-%d')}: "
             f"{os.cpu_count()} CPU cores ({cpu}), {threads} torch thread(s), torch "
             f"{__import__('torch').__version__}; load average {load:.1f} when it started (other work on the "
             "machine slows these numbers down).", "",
             "| model | scale | LR input | mode | s per output MP | peak RSS (MiB) |", "|---|---|---|---|---|---|"]
    for r in inference:
        mode = "whole image" if r["tile"] is None else f"tiles {r['tile']}, overlap 8"
        mode += f", window {r['window']}" if r["window"] else ", full search"
        lines.append(f"| {r['model']} | x{r['scale']} | {r['lr_size']}x{r['lr_size']} | {mode} | "
                     f"{r['seconds'] / r['out_mp']:.0f} | {r['peak_rss_mib']:.0f} |")
    lines += ["", "| model | training (x2, batch 8, 32x32 LR patches) | s per step | steps per s |", "|---|---|---|---|"]
    for r in training:
        lines.append(f"| {r['model']} | {r['unfolding']} | {r['seconds_per_step']:.2f} | {1 / r['seconds_per_step']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=128, help="LR input side for inference (default 128)")
    ap.add_argument("--train-steps", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="micro x2 only, tiny sizes")
    ap.add_argument("--readme", action="store_true", help="replace the table between the markers in README.md")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "engine_speed.md"))
    args = ap.parse_args(argv)

    load = os.getloadavg()[0]
    models, scales = (["micro"], [2]) if args.quick else (["micro", "tiny"], [2, 4])
    size = 32 if args.quick else args.size
    modes = [(None, None), (64, None), (64, 7)] if not args.quick else [(None, None), (16, 3)]
    inference = []
    for m in models:
        for s in scales:
            for tile, window in modes:
                r = _subprocess("inference", dict(model=m, scale=s, size=size, tile=tile, window=window,
                                                  threads=args.threads))
                print(json.dumps(r), flush=True)
                inference.append(r)
    training = []
    for m in models:
        for unfolding in ("end_to_end", "truncated"):
            r = _subprocess("training", dict(model=m, unfolding=unfolding, steps=1 if args.quick else args.train_steps,
                                             threads=args.threads))
            print(json.dumps(r), flush=True)
            training.append(r)
    md = table(inference, training, args.threads, load)
    Path(args.out).write_text(md + "\n")
    print(md)
    if args.readme:
        readme = REPO / "README.md"
        text = readme.read_text()
        if MARK_START not in text:
            print(f"README.md has no {MARK_START} marker", file=sys.stderr)
            return 2
        text = re.sub(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), lambda _: f"{MARK_START}\n{md}\n{MARK_END}",
                      text, flags=re.S)
        readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
