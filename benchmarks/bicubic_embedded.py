"""The bicubic baseline on the embedded photos: the floor every model evaluated on them has to beat.

Runs :func:`cisr_lib.evaluate.evaluate` with ``method="bicubic"`` on the six clean photos bundled with
scikit-image, whole images, every paper configuration at x2, x3 and x4, and saves the means (Table I
and Table II shapes) with the versions of the libraries that set the compressed bytes in
``benchmarks/bicubic_embedded.json``; ``--render --docs`` writes the tables of docs/bicubic_embedded.md
from that file (``tests/test_benchmark_blocks.py`` checks that they agree).

Usage (from the repository root)::

    python benchmarks/bicubic_embedded.py --docs          # measure (about half a minute on 2 cores), write the tables
    python benchmarks/bicubic_embedded.py --render --docs # only re-render from the saved JSON
    python benchmarks/bicubic_embedded.py --render --readme # the README's line of per-scale means
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from blocks import QUICK_HELP, REPO, publish, quick  # benchmarks/blocks.py

TAG = "bicubic-embedded"
SAVED = Path(__file__).resolve().parent / "bicubic_embedded.json"


def render(res: dict) -> str:
    """The tables of docs/bicubic_embedded.md from a saved result."""
    from cisr_lib.report import table_i, table_ii

    libs = ", ".join(f"{k} {v}" for k, v in res["libraries"].items())
    return "\n".join([
        f"Measured on {res['date']} ({res['machine']}, {res['seconds']:.0f} s); libraries that set the compressed "
        f"bytes: {libs}.", "",
        "### Table I shape: mean over the images and configurations of a scale", "", table_i(res["result"]),
        "### Table II shape: PSNR-Y (dB) per configuration (mean over the images)", "", table_ii(res["result"]),
        "### SSIM-Y per configuration (mean over the images)", "", table_ii(res["result"], "ssim").rstrip("\n")])


README_TAG = "bicubic-embedded-summary"


def summary(res: dict) -> str:
    """The README's line: the per-scale means of the saved result."""
    r = res["result"]
    n_img = next(iter(r["per_scale"].values()))["n"] // len(r["configs"])  # n: images x configs
    means = ", ".join(f"{s['psnr']:.2f} dB / {s['ssim']:.4f} at x{k}" for k, s in r["per_scale"].items())
    return (f"Bicubic on the embedded photos ({n_img} whole images x {len(r['configs'])} configs, PSNR-Y / SSIM-Y, "
            f"crop = scale; "
            f"`python benchmarks/bicubic_embedded.py`, {res['date']}): {means}; per configuration in "
            "[docs/bicubic_embedded.md](docs/bicubic_embedded.md).")


def measure(small: bool = False) -> dict:
    """The bicubic means (``small``: one photo, x2, JPEG q10 only)."""
    from cisr_lib.data import embedded_images
    from cisr_lib.evaluate import evaluate
    from cisr_lib.runtime import machine
    from cisr_lib.testset import library_versions

    t0 = time.perf_counter()
    images = dict(list(embedded_images().items())[:1]) if small else embedded_images()
    result = evaluate("bicubic", images, scales=(2,) if small else (2, 3, 4), configs=["jpeg10"] if small else None)
    return {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "seconds": round(time.perf_counter() - t0, 1),
            "libraries": library_versions(), "result": {k: v for k, v in result.items() if k != "records"}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--render", action="store_true", help="only re-render from the saved JSON")
    ap.add_argument("--docs", action="store_true", help="fill the block of docs/bicubic_embedded.md")
    ap.add_argument("--readme", action="store_true", help="fill the README's line of per-scale means")
    ap.add_argument("--out", default=str(SAVED), help="where the result is saved")
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = ap.parse_args(argv)
    if args.quick:
        quick(args)
    if not args.render:
        from cisr_lib.files import atomic_write

        atomic_write(args.out, json.dumps(measure(small=args.quick), indent=1) + "\n")
    res = json.loads(Path(args.out).read_text())
    rc = publish(render(res), REPO / "docs" / "bicubic_embedded.md", TAG, args.docs)
    return rc or publish(summary(res), REPO / "README.md", README_TAG, args.readme)


if __name__ == "__main__":
    sys.exit(main())
