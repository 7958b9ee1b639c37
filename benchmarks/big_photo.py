"""A new user's first command on a real-sized photo: ``cisr upscale photo.jpg out.png --scale 2``.

Makes a 3000x2000 JPEG (quality 75) from the embedded "coffee" photo (scikit-image, no download;
bicubic-enlarged, so its content is smooth), runs the command with every default (shipped weights,
default tiles, search window, precision and threads) in a fresh process, and reports the wall time
and the peak resident memory of that process.

Usage (from the repository root; ``--readme`` replaces the block between the markers in README.md)::

    python benchmarks/big_photo.py --readme
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from blocks import QUICK_HELP, REPO, publish, quick  # benchmarks/blocks.py
TAG = "big-photo"


def render(res: dict) -> str:
    """The README block, from the saved JSON."""
    w, h = res["input"]
    ow, oh = res["output"]
    s = res["scale"]
    return (f"`python benchmarks/big_photo.py` on {res['date']} ({res['cores']} CPU cores): `cisr upscale photo.jpg "
            f"photo_x{s}.png --scale {s}` with every default on a {w}x{h} JPEG "
            f"took **{res['seconds']:.0f} s** ({res['s_per_out_mp']:.1f} s per output megapixel, {ow}x{oh} out) with a "
            f"peak resident memory of **{res['peak_rss_mib']:.0f} MiB**.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=3000)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--readme", action="store_true")
    ap.add_argument("--render", action="store_true", help="only re-render the README block from the saved JSON")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "big_photo.json"))
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = ap.parse_args(argv)
    if args.quick:
        quick(args, width=96, height=64)
    if args.render:
        return publish(render(json.loads(Path(args.out).read_text())), REPO / "README.md", TAG, True)

    from PIL import Image

    from cisr_lib.data import embedded_images

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "photo.jpg", Path(tmp) / "photo_x2.png"
        Image.fromarray(embedded_images()["coffee"]).resize((args.width, args.height), Image.BICUBIC).save(src, quality=75)
        env = {k: v for k, v in os.environ.items() if k not in ("CISR_PRECISION", "OMP_NUM_THREADS")}
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "cisr_lib.cli", "upscale", str(src), str(dst), "--scale", str(args.scale)],
                           cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode:
            print(r.stderr[-3000:], file=sys.stderr)
            return 1
        with Image.open(dst) as im:
            size = im.size
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    res = {"date": time.strftime("%Y-%m-%d"), "input": [args.width, args.height], "output": list(size), "scale": args.scale,
           "seconds": wall, "s_per_out_mp": wall / (size[0] * size[1] / 1e6), "peak_rss_mib": peak,
           "cores": os.cpu_count()}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    md = render(res)
    return publish(md, REPO / "README.md", TAG, args.readme)


if __name__ == "__main__":
    sys.exit(main())
