"""A busy machine, threads and the OpenMP spin-wait: how ``cisr`` picks its threads and ``GOMP_SPINCOUNT``.

PyTorch's CPU build parallelises each operator with GNU OpenMP (libgomp). Between parallel regions
its threads spin-wait for each other (by default about 300,000 spins before sleeping). When another
program holds one of the cores, the thread that shares it with that program is descheduled and the
others spin at the end of every operator until the scheduler lets it finish: thousands of operators
per step make the run several times slower. ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once) and a short
``GOMP_SPINCOUNT`` limit the spinning; one thread per free core avoids the problem. These settings
are read when libgomp starts (with ``import torch``), so every case runs in a fresh process with its
environment.

Cases: micro x2, (a) inference on a 64x64 LR image, (b) a training step (forward, backward, Adam) on
8 LR patches of 32x32; each with 2 threads (default policy, PASSIVE) and 1 thread, on an idle machine
and beside a busy loop that holds one core. Best of ``--repeats`` after a warm-up.

Usage (from the repository root; ``--docs`` refreshes the table in docs/model.md)::

    python benchmarks/threads.py --docs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from blocks import QUICK_HELP, REPO, publish, quick  # benchmarks/blocks.py
TAG = "threads"

CASE = r"""
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]))
from cisr_lib.models import build_model
from cisr_lib.models.psi import unfolded_loss
torch.manual_seed(0)
m = build_model("micro", 2)
repeats = int(sys.argv[2])
def best(f):
    f()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return min(ts)
z1 = torch.rand(1, 3, 64, 64)
def infer():
    with torch.no_grad():
        m.eval()(z1)
z, y, x = torch.rand(8, 3, 32, 32), torch.rand(8, 3, 32, 32), torch.rand(8, 3, 64, 64)
opt = torch.optim.Adam(m.parameters(), 1e-4)
def train():
    m.train()
    ys, xs = m(z)
    loss = unfolded_loss(ys, xs, y, x, m.config["rho"])
    opt.zero_grad(); loss.backward(); opt.step()
print(json.dumps({"infer": best(infer), "train": best(train)}))
"""

SETTINGS = (("2 threads, default wait policy", 2, {}),
            ("2 threads, GOMP_SPINCOUNT=1000 (the cisr default)", 2, {"GOMP_SPINCOUNT": "1000"}),
            ("2 threads, OMP_WAIT_POLICY=PASSIVE", 2, {"OMP_WAIT_POLICY": "PASSIVE"}),
            ("1 thread", 1, {}))


def run(threads: int, env_extra: dict, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    env["CISR_NO_OPENMP_DEFAULTS"] = "1"  # measure libgomp as it is, without cisr_lib's GOMP_SPINCOUNT
    env.update(env_extra)
    r = subprocess.run([sys.executable, "-c", CASE, str(threads), str(repeats)], env=env, capture_output=True,
                       text=True, cwd=REPO)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def render(res: dict) -> str:
    """The docs/model.md block, from the saved JSON."""
    lines = [f"Measured by `python benchmarks/threads.py` on {res['date']} ({res['cores']} cores, fp32, "
             f"best of {res['repeats']}); busy = a pure-Python loop holding one core.", "",
             "| machine | setting | micro x2 inference, 64x64 LR (s) | micro x2 training step, 8 x 32x32 (s) |",
             "|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {'busy' if r['busy'] else 'idle'} | {r['setting']} | {r['infer']:.2f} | {r['train']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--docs", action="store_true", help="replace the table between the markers in docs/model.md")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "threads.json"))
    ap.add_argument("--render", action="store_true", help="only re-render the docs block from the saved JSON")
    ap.add_argument("--quick", action="store_true", help=QUICK_HELP)
    args = ap.parse_args(argv)
    if args.quick:
        quick(args, repeats=1)
    if args.render:
        return publish(render(json.loads(Path(args.out).read_text())), REPO / "docs" / "model.md", TAG, True)
    rows = []
    for busy in (False,) if args.quick else (False, True):  # --quick: the idle half
        loop = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            time.sleep(0.5)
            for label, threads, env in SETTINGS:
                rows.append({"busy": busy, "setting": label, **run(threads, env, args.repeats)})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            if loop is not None:
                loop.kill()
    res = {"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "repeats": args.repeats, "rows": rows}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    md = render(res)
    return publish(md, REPO / "docs" / "model.md", TAG, args.docs)


if __name__ == "__main__":
    sys.exit(main())
