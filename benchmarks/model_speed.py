"""Forward time, peak memory and FLOPs of the CISR-PSI models (numbers quoted in docs/model.md).

Every timed run happens in a fresh subprocess so that its peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) belongs to that run alone; on CUDA the peak is
``torch.cuda.max_memory_allocated``. The forward pass runs under ``torch.no_grad`` (inference).

FLOPs: convolutions are counted with ``torch.utils.flop_counter.FlopCounterMode`` on a small input
(their cost per output pixel does not depend on the image size); the non-local operator's two
matrix products cost 2 N M (K + 1 + C) FLOPs per call (K = C P^2 patch elements, N queries,
M <= N admissible candidates), which grows with the image, so it is reported for the benchmark
size with M = N (no blocking mask), plus about 5 N M element-wise operations for the softmax.

Usage (from the repository root)::

    python benchmarks/model_speed.py                          # micro and tiny, x2 and x4, 256x256
    python benchmarks/model_speed.py --configs tiny --scales 2 --size 64 --window 7
    python benchmarks/model_speed.py --memcheck               # micro x2 on 200x200 must stay < 3 GB
    python benchmarks/model_speed.py --memcheck --save        # ... and store it in benchmarks/memcheck.json
    python benchmarks/model_speed.py --render --readme        # README's FLOPs and memory blocks from the above
    python benchmarks/model_speed.py --device cuda --configs tiny,full
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from cisr_lib.models import build_config, build_model, count_parameters
from cisr_lib.models.nonlocal_op import DEFAULT_CHUNK_ELEMS


def _one(name: str, scale: int, size: int, window: int | None, device: str, repeats: int, chunk: int) -> dict:
    """Build, run ``repeats`` timed forwards (after one warm-up on CUDA) and report."""
    torch.manual_seed(0)
    model = build_model(name, scale, window=window, chunk_elems=chunk).to(device).eval()
    z = torch.rand(1, 3, size, size, device=device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux: KiB)
    times = []
    with torch.no_grad():
        if device == "cuda":
            model(z)  # warm-up (kernels, allocator)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        for _ in range(repeats):
            t0 = time.perf_counter()
            ys, xs = model(z)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    out = dict(
        config=name, scale=scale, size=size, window=window, device=device, chunk_elems=chunk,
        threads=torch.get_num_threads(), params=count_parameters(model),
        steps=model.config["steps"], seconds=min(times), seconds_all=times,
        rss_before_mib=rss_before,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        loadavg=os.getloadavg()[0],
    )  # fmt: skip
    if device == "cuda":
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["gpu"] = torch.cuda.get_device_name()
    return out


def conv_flops_per_output_pixel(name: str, scale: int, lr: int = 32) -> dict:
    """Convolution FLOPs (and measured NL matmul FLOPs at ``lr``) per HR output pixel."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(name, scale).eval()
    z = torch.full((1, 3, lr, lr), 0.5) + 0.01 * torch.arange(lr).float()  # smooth: no blocking
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(z)
    counts = counter.get_flop_counts()["Global"]
    conv = sum(v for k, v in counts.items() if "convolution" in str(k))
    mm = sum(v for k, v in counts.items() if "bmm" in str(k))  # the NL operator's products
    pixels = (scale * lr) ** 2
    return dict(conv_flops_per_px=conv / pixels, nl_matmul_flops_at_lr=mm, lr=lr)


def nl_flops_per_output_pixel(cfg: dict, scale: int, size: int, window: int | None) -> float:
    """Analytic matrix-product FLOPs of all NL calls per HR output pixel (M = N, no mask)."""
    n = size * size
    m = n if window is None else (2 * window + 1) ** 2
    k = 3 * cfg["patch"] ** 2
    per_call = 2 * n * m * (k + 1 + 3)
    return 2 * cfg["steps"] * per_call / (n * scale * scale)


FLOPS_TAG = "flops"


def flops_table(configs=("micro", "tiny", "full"), scales=(2, 3, 4), sizes=(256, 48)) -> str:
    """The FLOPs table of docs/model.md: convolutions counted by FlopCounterMode on a 32x32 LR input, the
    NL operator's products from the formula (M = N), per HR output pixel, in MFLOP. Counting, not timing:
    the same on every machine, so tests/test_benchmark_blocks.py recomputes it."""
    lines = ["| config | scale | convolutions | " + " | ".join(f"NL at {n}x{n}" for n in sizes) + " |",
             "| --- | --- | --- |" + " --- |" * len(sizes)]
    for name in configs:
        cfg = build_config(name)
        conv = [conv_flops_per_output_pixel(name, s)["conv_flops_per_px"] / 1e6 for s in scales]
        cells = [" / ".join(f"{c:.2f}" for c in conv) + " MFLOP"]
        cells += [" / ".join(f"{nl_flops_per_output_pixel(cfg, s, n, None) / 1e6:.2f}" for s in scales) + " MFLOP"
                  for n in sizes]
        lines.append(f"| {name} | " + " / ".join(f"x{s}" for s in scales) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)


MEMCHECK = Path(__file__).resolve().parent / "memcheck.json"
MEMCHECK_TAG = "memcheck"  # README.md: the peak memory of a whole-image forward pass (from MEMCHECK)


def memcheck_sentence(rec: dict) -> str:
    """The README's memory sentence, from a saved ``--memcheck`` record."""
    return (f"No N x N matrix is ever allocated: micro x{rec['scale']} on a {rec['size']}x{rec['size']} LR image "
            f"(whole-image search, {rec['size'] ** 2:,} LR pixels) peaks at {rec['peak_rss_mib']:.0f} MiB of resident "
            f"memory (`benchmarks/model_speed.py --memcheck --save`, {rec['date']}, "
            f"{rec['machine']}, {rec['threads']} threads).")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="micro,tiny")
    p.add_argument("--scales", default="2,4")
    p.add_argument("--size", type=int, default=256, help="LR side in pixels")
    p.add_argument("--window", type=int, default=None, help="NL search radius (default: whole image)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK_ELEMS, help="NL chunk_elems")
    p.add_argument("--memcheck", action="store_true", help="micro x2, 200x200, assert peak < 3 GB")
    p.add_argument("--no-flops", action="store_true")
    p.add_argument("--json", default=None, help="append the JSON records to this file")
    p.add_argument("--one", nargs=7, metavar=("NAME", "SCALE", "SIZE", "WINDOW", "DEVICE", "REPEATS", "CHUNK"),
                   help=argparse.SUPPRESS)  # fmt: skip
    p.add_argument("--flops-table", action="store_true",
                   help="print the FLOPs table (counting, no timing); with --docs also fill docs/model.md's block")
    p.add_argument("--docs", action="store_true")
    p.add_argument("--save", action="store_true", help=f"with --memcheck: store the record in {MEMCHECK.name}")
    p.add_argument("--render", action="store_true", help="print the README's FLOPs and memory blocks (no measuring)")
    p.add_argument("--readme", action="store_true", help="with --render: also fill them in README.md")
    p.add_argument("--quick", action="store_true", help="micro x2 on 32x32, no FLOPs count: a test of the script")
    a = p.parse_args()
    if a.quick:
        a.configs, a.scales, a.size, a.no_flops, a.json, a.memcheck, a.save = "micro", "2", 32, True, None, False, False

    if a.render:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from blocks import publish

        readme = Path(__file__).resolve().parent.parent / "README.md"
        rc = publish(flops_table(), readme, FLOPS_TAG, a.readme)
        sys.exit(rc or publish(memcheck_sentence(json.loads(MEMCHECK.read_text())), readme, MEMCHECK_TAG, a.readme))
    if a.flops_table:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from blocks import publish

        sys.exit(publish(flops_table(), Path(__file__).resolve().parent.parent / "docs" / "model.md", FLOPS_TAG, a.docs))
    if a.one:
        name, scale, size, window, device, repeats, chunk = a.one
        win = None if window == "none" else int(window)
        rec = _one(name, int(scale), int(size), win, device, int(repeats), int(chunk))
        print(json.dumps(rec))
        return

    jobs = []
    if a.memcheck:
        jobs.append(("micro", 2, 200))
    else:
        jobs = [(c, int(s), a.size) for c in a.configs.split(",") for s in a.scales.split(",")]
    records = []
    for name, scale, size in jobs:
        cmd = [sys.executable, __file__, "--one", name, str(scale), str(size),
               "none" if a.window is None else str(a.window), a.device, str(a.repeats), str(a.chunk)]  # fmt: skip
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            sys.exit(f"run {name} x{scale} failed:\n{res.stderr}")
        rec = json.loads(res.stdout.strip().splitlines()[-1])
        if not a.no_flops:
            rec.update(conv_flops_per_output_pixel(name, scale))
            rec["nl_flops_per_px"] = nl_flops_per_output_pixel(build_config(name), scale, size, a.window)
        records.append(rec)
        line = (
            f"{name:5s} x{scale} {size}x{size} window={a.window} {a.device} threads={rec['threads']} "
            f"params={rec['params']:,} time={rec['seconds']:.2f}s peak_rss={rec['peak_rss_mib']:.0f}MiB "
            f"(before forward {rec['rss_before_mib']:.0f}MiB) load={rec['loadavg']:.2f}"
        )
        if "peak_cuda_mib" in rec:
            line += f" peak_cuda={rec['peak_cuda_mib']:.0f}MiB {rec['gpu']}"
        if "conv_flops_per_px" in rec:
            line += (f" conv={rec['conv_flops_per_px'] / 1e6:.2f}MFLOP/px"
                     f" nl={rec['nl_flops_per_px'] / 1e6:.2f}MFLOP/px")  # fmt: skip
        print(line, flush=True)
        if a.json:
            with open(a.json, "a") as f:
                f.write(json.dumps(rec) + "\n")
    if a.memcheck:
        peak = records[0]["peak_rss_mib"]
        assert peak < 3 * 1024, f"peak RSS {peak:.0f} MiB exceeds 3 GB"
        print(f"memcheck OK: {peak:.0f} MiB < 3072 MiB")
        if a.save:
            from cisr_lib.files import atomic_write
            from cisr_lib.runtime import machine

            rec = {**records[0], "scale": 2, "size": 200, "date": time.strftime("%Y-%m-%d"), "machine": machine()}
            atomic_write(MEMCHECK, json.dumps(rec, indent=1) + "\n")


if __name__ == "__main__":
    main()
