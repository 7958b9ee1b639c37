"""``cisr eval``: the command line of :func:`cisr_lib.evaluate.evaluate`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from cisr_lib.evaluate import BICUBIC, RESULTS_FILE, TABLES_FILE, MethodSpec, normalise_configs, data_source, evaluate
from cisr_lib.report import table_i


def _weights_by_scale(paths: Sequence[str], scales: Sequence[int]) -> dict[int, Path]:
    """Match ``--weights`` files to the scales by the scale stored in each file."""
    from cisr_lib.checkpoint import CheckpointError, load_checkpoint

    by_scale: dict[int, Path] = {}
    for p in map(Path, paths):
        st = load_checkpoint(p)
        cfg = st.get("model_config") if isinstance(st, dict) else None
        if not isinstance(cfg, dict) or "scale" not in cfg:
            raise CheckpointError(f"{p} is not a weights file or checkpoint of this project")
        s = int(cfg["scale"])
        if s in by_scale:
            raise ValueError(f"two weights files for x{s}: {by_scale[s]} and {p}")
        by_scale[s] = p
    missing = [s for s in scales if s not in by_scale]
    if missing:
        raise ValueError(f"no weights file for x{missing[0]} among --weights (they are for "
                         f"{', '.join(f'x{s}' for s in sorted(by_scale))})")
    return {s: by_scale[s] for s in scales}


def _cmd_eval(args: argparse.Namespace) -> int:
    from cisr_lib.degradations import parse_config
    from cisr_lib.runtime import set_threads
    from cisr_lib.pretrained import default_weights
    from cisr_lib.testset import build_test_set

    set_threads(args.threads)
    if args.method == BICUBIC:
        if args.weights or args.window is not None:
            raise ValueError("--weights and --window apply to --method model, not bicubic")
        method: MethodSpec = BICUBIC
    elif args.weights:
        method = _weights_by_scale(args.weights, args.scales)
    else:
        method = {s: default_weights(s) for s in args.scales}
    configs = normalise_configs(args.configs)
    data = data_source(args.data)
    if args.testset:
        build_test_set(data, args.testset, scales=args.scales, configs=[parse_config(c) for c in configs])
        data = args.testset
    res = evaluate(method, data, args.scales, configs, args.out, with_ifc=args.ifc, window=args.window,
                   max_side=args.max_side, device=args.device, precision=args.precision,
                   progress=not args.quiet)
    print(table_i(res), end="")
    print(f"full results in {Path(args.out) / RESULTS_FILE}, tables in {Path(args.out) / TABLES_FILE}")
    return 0


def add_eval_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``cisr eval`` on the subparsers of :func:`cisr_lib.cli.build_parser`.

    Args:
        subparsers: the object returned by ``ArgumentParser.add_subparsers``.

    Returns:
        The ``eval`` subparser.
    """
    p = subparsers.add_parser("eval", help="evaluate bicubic or a model over test images (Tables I-II); resumes from OUT")
    p.add_argument("--method", required=True, choices=(BICUBIC, "model"))
    p.add_argument("--weights", nargs="+", metavar="PATH",
                   help="weights files, one per scale (default: the shipped weights of each scale)")
    p.add_argument("--data", default="embedded",
                   help="embedded, embedded-val, photos, photos-val, or a folder of clean images or a built test set")
    p.add_argument("--testset", metavar="DIR", help="build (or verify) a frozen test set from --data here, then read it")
    p.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4], choices=(2, 3, 4))
    p.add_argument("--configs", nargs="+", help="e.g. jpeg10 webp5 (default: the paper's 10)")
    p.add_argument("--out", required=True, help="output folder: results.json, tables.md, cache.jsonl")
    p.add_argument("--ifc", action="store_true", help="also compute IFC (slow)")
    p.add_argument("--window", type=int, help="non-local search radius (default: the whole image, as the paper)")
    p.add_argument("--max-side", type=int, help="centre-crop HR images to at most N x N (default: whole images)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default=None, choices=("auto", "fp32", "bf16"),
                   help="bf16 autocast where the hardware has it (auto), or fp32 (default: auto, or $CISR_PRECISION)")
    p.add_argument("--threads", type=int, help="CPU threads (default: one per core that is free at the start)")
    p.add_argument("--quiet", action="store_true", help="no line per configuration")
    p.set_defaults(func=_cmd_eval)
    return p
