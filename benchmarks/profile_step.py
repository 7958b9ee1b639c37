"""Profile one training step (torch.profiler): where the time of a CPU training step goes.

One step = forward through the J unfolded steps, the loss of eq. (12), backward, Adam, on a batch of
8 LR patches of 32x32 at x2 (the ``cpu`` preset's batch) from the embedded photos. For each model
and precision the script times a few steps, then profiles one and groups the operators into what
they implement: convolutions (forward, backward), the non-local operator (its matrix products,
softmax and masking), and the rest. Data preparation is timed separately (one batch from
:class:`cisr_lib.data.PairedPatchDataset`, JPEG/WebP encoding included).

It also measures the 3x3 convolution kernels alone (fp32 / bf16, contiguous / channels_last), and
with ``--baseline-rev`` profiles an older revision (fp32, contiguous, its own operators) as "before".

Usage (from the repository root; ``--docs`` refreshes the table in docs/model.md)::

    python benchmarks/profile_step.py --threads 2 --baseline-rev 6dea505 --docs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from blocks import QUICK_HELP, REPO, baseline_worktree, publish, quick  # benchmarks/blocks.py
TAG = "profile-step"

GROUPS = {  # profiler operator name -> what it implements
    "aten::mkldnn_convolution": "conv forward", "aten::convolution_backward": "conv backward",
    "aten::bmm": "NL products", "aten::_softmax": "NL softmax", "aten::_softmax_backward_data": "NL softmax",
    "aten::masked_fill_": "NL masking", "aten::add_": "element-wise", "aten::mul": "element-wise",
    "aten::add": "element-wise", "aten::copy_": "copies / layout", "aten::_to_copy": "copies / layout",
}
ORDER = ("conv forward", "conv backward", "NL products", "NL softmax", "NL masking", "element-wise",
         "copies / layout", "other")


def profile(model: str, precision: str | None, threads: int, repeats: int = 3) -> dict:
    """One model and precision; ``precision=None`` profiles an older revision (fp32, contiguous)."""
    import contextlib

    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from cisr_lib.data import PairedPatchDataset, embedded_images
    from cisr_lib.models import build_model
    from cisr_lib.models.psi import unfolded_loss

    if precision is None:  # a revision without cisr_lib.precision
        def autocast(*_):
            return contextlib.nullcontext()

        def describe(*_):
            return "fp32, contiguous (before)"

        def memory_format(_):
            return torch.contiguous_format
    else:
        from cisr_lib.precision import autocast, describe, memory_format

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_model(model, 2).to(memory_format=memory_format("cpu"))
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    images = {k: v for k, v in embedded_images().items() if k != "chelsea"}
    ds = PairedPatchDataset(images, 2, lr_patch=32, augment=True, seed=0, length=10**9, cache=True)
    [ds[i] for i in range(8)]  # decode the photos once (cached)
    t0 = time.perf_counter()
    batch = [ds[8 + i] for i in range(8)]
    data_s = time.perf_counter() - t0
    z, y, x = (torch.stack(b) for b in zip(*batch))
    z = z.contiguous(memory_format=memory_format("cpu"))
    rho, gamma = net.config["rho"], net.config["gamma"]

    def step():
        with autocast(precision, "cpu"):
            ys, xs = net(z)
        loss = unfolded_loss([a.float() for a in ys], [a.float() for a in xs], y, x, rho, gamma)  # (12)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    groups: dict[str, float] = {}
    total = 0.0
    for ev in prof.key_averages():
        ms = ev.self_cpu_time_total / 1000
        total += ms
        groups[GROUPS.get(ev.key, "other")] = groups.get(GROUPS.get(ev.key, "other"), 0.0) + ms
    return {"model": model, "precision": describe(precision, "cpu"), "step_s": min(times), "data_s": data_s,
            "share": {g: groups.get(g, 0.0) / total for g in ORDER}}


def kernels(threads: int) -> list[dict]:
    """GFLOP/s of a 3x3 convolution (batch 8, 64x64): channels, forward or forward + backward, layout, precision."""
    import torch

    torch.set_num_threads(threads)
    rows = []
    for c in (32, 64):
        for backward in (False, True):
            for layout in ("contiguous", "channels_last"):
                row = {"channels": c, "pass": "forward + backward" if backward else "forward", "layout": layout}
                for prec in ("fp32", "bf16"):
                    conv = torch.nn.Conv2d(c, c, 3, padding=1)
                    x = torch.randn(8, c, 64, 64)
                    if layout == "channels_last":
                        conv, x = conv.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
                    x.requires_grad_(backward)

                    def run():
                        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
                            y = conv(x)
                        if backward:
                            y.float().sum().backward()

                    for _ in range(3):
                        run()
                    t0 = time.perf_counter()
                    for _ in range(10):
                        run()
                    seconds = (time.perf_counter() - t0) / 10
                    row[prec] = 2 * 9 * c * c * 8 * 64 * 64 * (3 if backward else 1) / seconds / 1e9
                rows.append(row)
    return rows


def _subprocess(root: Path, model: str, threads: int) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(root)!r}); sys.path.insert(0, {str(REPO / 'benchmarks')!r});"
            f"import profile_step as b; print('RESULT' + json.dumps(b.profile({model!r}, None, {threads})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT")]
    if r.returncode or not lines:
        raise RuntimeError(f"baseline {model} failed:\n{r.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT"):])


def render(res: dict) -> str:
    """The docs/model.md block, from the saved JSON."""
    rows, kern, threads, rev = res["steps"], res["kernels"], res["threads"], res["baseline_rev"]
    lines = [f"Measured by `python benchmarks/profile_step.py --threads {threads}"
             f"{' --baseline-rev ' + rev if rev else ''}` on {res['date']} "
             f"({res['cores']} cores, {threads} thread(s)). 3x3 convolution kernels, batch 8, 64x64, GFLOP/s:", "",
             "| channels | pass | layout | fp32 | bf16 autocast |", "|---|---|---|---|---|"]
    for k in kern:
        lines.append(f"| {k['channels']} | {k['pass']} | {k['layout']} | {k['fp32']:.0f} | {k['bf16']:.0f} |")
    lines += ["", "One training step, batch 8 of 32x32 LR patches at x2, best of 3 (channels_last unless marked "
              "before); shares of the profiled step's self CPU time:", "",
             "| model | precision | s per step | data s per batch | " + " | ".join(ORDER) + " |",
             "|---|---|---|---|" + "---|" * len(ORDER)]
    for r in rows:
        lines.append(f"| {r['model']} | {r['precision']} | {r['step_s']:.2f} | {r['data_s']:.3f} | "
                     + " | ".join(f"{100 * r['share'][g]:.0f} %" for g in ORDER) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["micro", "tiny"])
    ap.add_argument("--baseline-rev", help="also profile this git revision (fp32, contiguous) as 'before'")
    ap.add_argument("--docs", action="store_true", help="replace the table between the markers in docs/model.md")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "profile_step.json"))
    ap.add_argument("--render", action="store_true", help="only re-render the docs block from the saved JSON")
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = ap.parse_args(argv)
    if args.quick:
        quick(args, threads=1, models=["micro"], baseline_rev=None)
    if args.render:
        return publish(render(json.loads(Path(args.out).read_text())), REPO / "docs" / "model.md", TAG, True)
    kern = kernels(args.threads)
    rows = []
    with baseline_worktree(args.baseline_rev) as worktree:
        for m in args.models:
            if worktree is not None:
                rows.append(_subprocess(worktree, m, args.threads))
                print(json.dumps(rows[-1]), flush=True)
            for p in ("fp32", "bf16"):
                rows.append(profile(m, p, args.threads))
                print(json.dumps(rows[-1]), flush=True)
    res = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "threads": args.threads,
           "baseline_rev": args.baseline_rev, "kernels": kern, "steps": rows}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    md = render(res)
    return publish(md, REPO / "docs" / "model.md", TAG, args.docs)


if __name__ == "__main__":
    sys.exit(main())
