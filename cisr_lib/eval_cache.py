"""The per-image cache of an evaluation (``cache.jsonl`` in its ``out_dir``), so that a rerun resumes.

One JSON line per computed image, keyed by (method id, scale, configuration, image name, SHA-256 of
the image's HR and z pixels; :data:`EvalCache.KEY`, :func:`input_hash`). A rerun of
:func:`cisr_lib.evaluate.evaluate` into the same folder reuses every cached record, so an interrupted
evaluation resumes where it stopped. The method id (:func:`cisr_lib.methods.method_id`) changes with
the weights, ``window`` and bf16 arithmetic: a changed model never reuses stale numbers. Each record is
flushed and synced as it is written; a torn last line (a killed writer) is ignored when read back.

Derived in notebooks/10_evaluation.ipynb
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

__all__ = ["EvalCache", "input_hash"]

if TYPE_CHECKING:
    from cisr_lib.testset import TestSample


def input_hash(smp: TestSample) -> str:
    """SHA-256 (16 hex digits) of the shapes and pixels of a sample's HR and z images."""
    h = hashlib.sha256()
    for a in (smp.hr, smp.z):
        h.update(f"{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


class EvalCache:
    """Per-image records in a JSON-lines file; a torn last line (a killed writer) is ignored."""

    KEY = ("method", "scale", "config", "image", "input")

    def __init__(self, path: Path | None):
        self.path = path
        self.records: dict[tuple, dict] = {}
        self._torn = False
        if path is None or not path.exists():
            return
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                self._torn = f.read(1) != b"\n"  # a killed writer left half a line: start a new one
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and all(k in rec for k in self.KEY):
                self.records[self.key(rec)] = rec

    @classmethod
    def key(cls, rec: Mapping[str, Any]) -> tuple:
        return tuple(rec[k] for k in cls.KEY)

    def get(self, key: tuple, with_ifc: bool) -> dict | None:
        rec = self.records.get(key)
        if rec is None or (with_ifc and "ifc" not in rec):
            return None
        return rec

    def put(self, rec: dict) -> None:
        self.records[self.key(rec)] = rec
        if self.path is None:
            return
        with open(self.path, "a") as f:
            f.write(("\n" if self._torn else "") + json.dumps(rec) + "\n")
            self._torn = False
            f.flush()
            os.fsync(f.fileno())
