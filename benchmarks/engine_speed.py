"""Inference and training speed of the engine, old and new side by side: the README's "Benchmarks" block.

Three ways of running the same cases, each case in a fresh subprocess (so its peak resident memory
is its own), one after the other on the same machine:

* ``before``: the code of another git revision (``--baseline-rev``, checked out into a temporary
  worktree), with its own defaults: fp32, contiguous tensors, the previous non-local operator;
* ``fp32``: this code with ``precision="fp32"`` (the new operator and channels_last on the CPU);
* ``default``: this code with its defaults (``precision="auto"``: bf16 autocast where the CPU has
  amx_bf16 / avx512_bf16).

Cases:

* **Inference** (``cisr_lib.upscale``, the code path of ``cisr upscale``): seconds per output
  megapixel and peak RSS for ``micro`` and ``tiny`` at x2 and x4 on a JPEG LR image, (a) the whole
  image with the paper's whole-image non-local search (``tile=None, window=None``) and (b) the
  defaults of ``cisr upscale`` (before: 256-pixel tiles with whole-tile search; now ``tile="auto",
  window="auto"``). Speed does not depend on the weight values, so untrained models are used.
* **Training** (``cisr_lib.train.train``): seconds per step for ``micro`` and ``tiny`` at x2, batch
  8 of 32x32 LR patches, end-to-end unfolding, on the embedded photos (the first step is left out).

Usage (from the repository root; ``--readme`` replaces the block between the markers in README.md)::

    python benchmarks/engine_speed.py --threads 2 --baseline-rev 6dea505 --readme
    python benchmarks/engine_speed.py --quick            # one small case of each, to check the script
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from blocks import QUICK_HELP, REPO, baseline_worktree, publish, quick  # benchmarks/blocks.py

from cisr_lib.runtime import cpu_name
TAG = "engine-speed"


def _kwargs_for(fn, **kw) -> dict:
    """The keyword arguments ``fn`` accepts (older revisions lack ``precision``, ``progress``, ...)."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in kw.items() if k in params}


def _describe(precision: str | None) -> str:
    if precision is None:  # the baseline revision: no precision option (and an editable install of this
        return "fp32 (baseline revision)"  # checkout would answer an import of cisr_lib.precision)
    from cisr_lib.precision import describe

    return describe(precision, "cpu")


def _inference_case(model: str, scale: int, size: int, mode: str, precision: str | None, threads: int,
                    repeats: int = 1) -> dict:
    import torch

    import cisr_lib
    from cisr_lib.data import embedded_images
    from cisr_lib.degradations import compress, imresize
    from cisr_lib.models import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_model(model, scale)
    hr = embedded_images()["astronaut"]  # 512 x 512: LR = JPEG q20 of a bicubic down-scale, cropped to size
    image = compress(imresize(hr, 0.5)[:size, :size] if size <= 256 else imresize(hr, size / 512), "jpeg", 20)
    if mode == "whole":
        kw = dict(tile=None, window=None)  # the paper: one pass, whole-image search
    elif precision is None:
        kw = dict(tile=256, window=None)  # the previous `cisr upscale` defaults
    else:
        kw = dict(tile="auto", window="auto")
    kw = _kwargs_for(cisr_lib.upscale, **kw, precision=precision, progress=False, device="cpu")
    times = []
    for _ in range(repeats):  # the first run includes one-off costs (kernel selection, caches)
        t0 = time.perf_counter()
        out = cisr_lib.upscale(image, scale, weights=net, **kw)
        times.append(time.perf_counter() - t0)
    return {"seconds": min(times), "all_seconds": times, "out_mp": out.shape[0] * out.shape[1] / 1e6,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "precision": _describe(precision)}


def _training_case(model: str, steps: int, precision: str | None, threads: int) -> dict:
    from cisr_lib.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        kw = _kwargs_for(TrainConfig, precision=precision) if precision else {}
        cfg = TrainConfig(model=model, scale=2, preset="cpu", max_steps=steps + 1, val_every=10**6,
                          data="embedded", threads=threads, ckpt_every=10**6, **kw)
        train(cfg, tmp, progress=False)
        records = [json.loads(line) for line in (Path(tmp) / "log.jsonl").read_text().splitlines()]
    elapsed = [r["elapsed"] for r in records if "loss" in r]
    per_step = (elapsed[-1] - elapsed[0]) / (len(elapsed) - 1)  # the first step (warm-up) is left out
    return {"seconds_per_step": per_step, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "precision": _describe(precision)}


def _subprocess(root: Path, kind: str, kwargs: dict) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(root)!r}); sys.path.insert(0, {str(REPO / 'benchmarks')!r});"
            f"import engine_speed as b; print('RESULT' + json.dumps(b._{kind}_case(**{kwargs!r})))")
    env = {k: v for k, v in os.environ.items() if k != "CISR_PRECISION"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")]
    if r.returncode or not lines:
        raise RuntimeError(f"{kind} {kwargs} failed:\n{r.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT"):])


def table(res: dict) -> str:
    ways = res["ways"]
    default = res["training"][0]["default"]["precision"] if res["training"] else "?"
    lines = [f"Measured by `python benchmarks/engine_speed.py --threads {res['threads']} --repeats {res['repeats']}"
             f"{' --baseline-rev ' + res['baseline_rev'] if res['baseline_rev'] else ''}` on {res['date']}: "
             f"{res['cpu']}, {res['cores']} cores, {res['threads']} torch thread(s), torch {res['torch']}; load average "
             f"{res['load']:.1f} when it started. `default` is this code's `precision=\"auto\"`: {default}. "
             + (f"`before` is revision {res['baseline_rev']} (fp32, its own defaults). " if "before" in ways else "")
             + f"Each case runs in a fresh process; inference is the best of {res['repeats']} runs there, training the "
             f"mean of steps 2-{res['train_steps'] + 1}. At {res['size']}x{res['size']} every mode is one tile, so "
             "`before`'s two rows are the same computation (their difference is run-to-run noise).", ""]
    head = " | ".join(f"{w} s/MP" for w in ways)
    lines += [f"| model | scale | LR input | mode | {head} | speed-up | peak RSS MiB ({', '.join(ways)}) |",
              "|---|---|---|---|" + "---|" * (len(ways) + 2)]
    for case in res["inference"]:
        spm = {w: case[w]["seconds"] / case[w]["out_mp"] for w in ways}
        mode = ("whole image, whole-image search" if case["mode"] == "whole"
                else "defaults of `cisr upscale`" + (" (before: tiles 256, whole-tile search)" if "before" in ways else ""))
        lines.append(f"| {case['model']} | x{case['scale']} | {case['size']}x{case['size']} | {mode} | "
                     + " | ".join(f"{spm[w]:.1f}" for w in ways)
                     + f" | {spm[ways[0]] / spm[ways[-1]]:.1f}x | "
                     + " / ".join(f"{case[w]['peak_rss_mib']:.0f}" for w in ways) + " |")
    head = " | ".join(f"{w} s/step" for w in ways)
    lines += ["", f"| model | training (x2, batch 8, 32x32 LR patches, end-to-end) | {head} | speed-up |",
              "|---|---|" + "---|" * (len(ways) + 1)]
    for case in res["training"]:
        sps = {w: case[w]["seconds_per_step"] for w in ways}
        lines.append(f"| {case['model']} | steps per s: {1 / sps[ways[-1]]:.2f} now | "
                     + " | ".join(f"{sps[w]:.2f}" for w in ways) + f" | {sps[ways[0]] / sps[ways[-1]]:.1f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=128, help="LR input side for inference (default 128)")
    ap.add_argument("--train-steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2, help="inference runs per case in its process; the best counts")
    ap.add_argument("--baseline-rev", help="git revision measured as 'before' (e.g. the last commit before a change)")
    ap.add_argument("--quick", action="store_true", help="micro x2 only, small sizes; " + QUICK_HELP)
    ap.add_argument("--readme", action="store_true", help="replace the block between the markers in README.md")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "engine_speed.json"))
    ap.add_argument("--render", action="store_true", help="only re-render the README block from the saved JSON")
    args = ap.parse_args(argv)
    if args.quick:
        quick(args, threads=1, baseline_rev=None)
    if args.render:
        return publish(table(json.loads(Path(args.out).read_text())), REPO / "README.md", TAG, args.readme)

    import torch

    with baseline_worktree(args.baseline_rev) as worktree:
        ways = {"fp32": (REPO, "fp32"), "default": (REPO, "auto")}
        if worktree is not None:
            ways = {"before": (worktree, None), **ways}
        res = {"date": time.strftime("%Y-%m-%d"), "cpu": cpu_name(), "cores": os.cpu_count(), "threads": args.threads,
               "torch": torch.__version__, "load": os.getloadavg()[0], "baseline_rev": args.baseline_rev,
               "ways": list(ways), "repeats": args.repeats, "train_steps": args.train_steps,
               "inference": [], "training": []}
        models, scales = (["micro"], [2]) if args.quick else (["micro", "tiny"], [2, 4])
        size = 32 if args.quick else args.size
        res["size"] = size
        for m in models:
            for s in scales:
                for mode in ("whole", "default"):
                    case = {"model": m, "scale": s, "size": size, "mode": mode}
                    for w, (root, prec) in ways.items():
                        case[w] = _subprocess(root, "inference", dict(model=m, scale=s, size=size, mode=mode,
                                                                      precision=prec, threads=args.threads,
                                                                      repeats=args.repeats))
                    print(json.dumps(case), flush=True)
                    res["inference"].append(case)
        for m in models:
            case = {"model": m}
            for w, (root, prec) in ways.items():
                case[w] = _subprocess(root, "training", dict(model=m, steps=1 if args.quick else args.train_steps,
                                                             precision=prec, threads=args.threads))
            print(json.dumps(case), flush=True)
            res["training"].append(case)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    md = table(res)
    return publish(md, REPO / "README.md", TAG, args.readme)


if __name__ == "__main__":
    sys.exit(main())
