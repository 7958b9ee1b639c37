"""A training run's log (``log.jsonl`` in the run folder): writing, truncating on resume, reading, plotting.

One JSON record per line: a training step (``loss``, ``lr``, ``elapsed``), a validation (``val_psnr``,
``val_bicubic``, per configuration), or the start of a leg (``leg``: device, precision, threads, the
command). :mod:`cisr_lib.train` writes it; :mod:`cisr_lib.ship` and the notebooks read it.

Derived in notebooks/09_unfolding_and_training.ipynb
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from cisr_lib.files import atomic_write


def append_log(path: Path, record: dict) -> None:
    """Append one JSON record to a run's ``log.jsonl``."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def truncate_log(path: Path, step: int) -> None:
    """Drop the records of steps after ``step``, and the legs that started at ``step`` or later
    (their work was lost with the process; the leg that resumes from ``step`` logs itself again)."""
    if path.exists():
        def kept(rec: dict) -> bool:
            return rec["step"] < step if "leg" in rec else rec["step"] <= step

        keep = [ln for ln in path.read_text().splitlines() if ln.strip() and kept(json.loads(ln))]
        atomic_write(path, "".join(ln + "\n" for ln in keep))


def jsonable(d: dict) -> dict:
    """A config dict with its tuples as lists (what JSON gives back)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def read_log(run_dir: str | os.PathLike) -> tuple[list[dict], list[dict]]:
    """The training records and the validation records of a run's ``log.jsonl``."""
    recs = [json.loads(line) for line in Path(run_dir, "log.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in recs if "loss" in r], [r for r in recs if "val_psnr" in r]


def read_legs(run_dir: str | os.PathLike) -> list[dict]:
    """The legs of a run (each start or resume): step, device, precision, threads, start time and,
    where it was logged, the command."""
    recs = [json.loads(line) for line in Path(run_dir, "log.jsonl").read_text().splitlines() if line.strip()]
    return [{"step": r["step"], **r["leg"]} for r in recs if "leg" in r]


def plot_curves(run_dir: str | os.PathLike, axes=None, smooth: int = 25):
    """Loss (smoothed) and validation PSNR-Y against step, with the bicubic level for reference."""
    import matplotlib.pyplot as plt

    tr, va = read_log(run_dir)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = np.array([r["step"] for r in tr])
    loss = np.array([r["loss"] for r in tr])
    if len(loss) >= smooth > 1:
        loss_s = np.convolve(loss, np.ones(smooth) / smooth, mode="valid")
        axes[0].plot(steps[smooth - 1:], loss_s)
    else:
        axes[0].plot(steps, loss)
    axes[0].set(xlabel="step", ylabel="loss (eq. 12)", yscale="log", title="training loss")
    if va:
        axes[1].plot([r["step"] for r in va], [r["val_psnr"] for r in va], "o-", label="model")
        axes[1].axhline(va[0]["val_bicubic"], color="gray", ls="--", label="bicubic")
        axes[1].set(xlabel="step", ylabel="PSNR-Y (dB)", title="validation")
        axes[1].legend()
    return axes
