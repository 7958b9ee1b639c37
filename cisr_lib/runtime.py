"""CPU threads on a machine that is doing other things (docs/model.md, "A busy machine").

PyTorch's CPU build runs each operator on a team of GNU OpenMP (libgomp) threads. Between operators
a thread that has finished spins (by default about 300,000 iterations) before it sleeps. When
another program holds one of the cores, the thread that shares its core is descheduled and its team
mates spin at the end of every operator until it comes back: on the project's 2-core machine a micro
training step took 3.0x longer with two threads beside a busy loop than on an idle machine, and one
thread was then faster than two (benchmarks/threads.py, table in docs/model.md). Two defaults follow:

* :func:`configure_openmp` sets ``GOMP_SPINCOUNT=1000`` when it is unset. In the committed
  measurement it made a training step 17 % faster and inference twice as fast beside a busy loop,
  at 12 % on an idle machine's training step (inference no slower); ``OMP_WAIT_POLICY=PASSIVE``
  helped about as much when busy and cost 18 % when idle. It protects a run that other work joins
  after it started; :func:`auto_threads` handles a machine that is busy when it starts. libgomp
  reads the variable when it starts (``import torch``), so ``import cisr_lib`` calls this before
  torch is imported; it does nothing when torch is already loaded or ``CISR_NO_OPENMP_DEFAULTS``
  is set.
* :func:`auto_threads`: the ``cisr`` commands use one thread per core that is free when they
  start (the cores this process may use, minus the cores other programs kept busy over the last
  0.2 s, rounded), at least one.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

SPINCOUNT = "1000"


def configure_openmp() -> bool:
    """Set ``GOMP_SPINCOUNT`` (when unset) before torch loads libgomp; True when it was set here."""
    if "torch" in sys.modules or os.environ.get("CISR_NO_OPENMP_DEFAULTS") or "GOMP_SPINCOUNT" in os.environ:
        return False
    os.environ["GOMP_SPINCOUNT"] = SPINCOUNT
    return True


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), else ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _cpu_times(cpus: set[int] | None = None) -> tuple[int, int] | None:
    """(busy, total) jiffies of the given CPUs (all when None) from /proc/stat (Linux), or None."""
    try:
        with open("/proc/stat") as f:
            lines = [ln.split() for ln in f if ln.startswith("cpu")]
    except OSError:
        return None
    busy = total = 0
    for parts in lines:
        name = parts[0]
        if (name == "cpu") != (cpus is None) or (cpus is not None and int(name[3:]) not in cpus):
            continue
        try:
            fields = [int(v) for v in parts[1:9]]  # user nice system idle iowait irq softirq steal
        except ValueError:
            return None
        busy += sum(fields) - fields[3] - fields[4]
        total += sum(fields)
    return (busy, total) if total else None


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def busy_cores(interval: float = 0.2) -> float:
    """How many of this process's cores other programs keep busy now: CPU use over ``interval`` s.

    Read from /proc/stat (Linux) for the CPUs of this process's affinity; 0 where unavailable.
    Unlike the load average, which trails the last minute (a previous run of ours included), this is
    what the machine does now.
    """
    cpus = _affinity()
    first = _cpu_times(cpus)
    if first is None:
        return 0.0
    time.sleep(interval)
    second = _cpu_times(cpus)
    if second is None or second[1] <= first[1]:
        return 0.0
    share = (second[0] - first[0]) / (second[1] - first[1])  # busy share of these CPUs
    return share * (len(cpus) if cpus else (os.cpu_count() or 1))


def auto_threads(busy: float | None = None, cores: int | None = None) -> int:
    """Threads for a ``cisr`` command: ``OMP_NUM_THREADS`` when set, else one per free core.

    One per free core is ``cores - round(busy)``, clipped to [1, cores], shared out among the
    processes of a ``torchrun`` job on this machine (``LOCAL_WORLD_SIZE``).

    Args:
        busy: cores other programs use (default: :func:`busy_cores`, measured now).
        cores: usable cores (default: :func:`usable_cores`).
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = usable_cores() if cores is None else int(cores)
    busy = busy_cores() if busy is None else float(busy)
    free = max(1, min(cores, cores - int(busy + 0.5)))
    local = os.environ.get("LOCAL_WORLD_SIZE", "1")
    return max(1, free // int(local)) if local.isdigit() and int(local) > 1 else free


def set_threads(threads: int | None) -> int:
    """Set torch's CPU threads for a command: ``threads``, or :func:`auto_threads`; returns the count."""
    import torch

    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {threads}")
    n = threads or auto_threads()
    torch.set_num_threads(n)
    return n


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """A short description of this machine: cores and CPU, and the GPU when torch sees one (for time records)."""
    text = f"{os.cpu_count()}-core {cpu_name()}"
    try:
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name(0)}"
    except Exception:  # torch missing or its CUDA probe failing must not stop a time record
        pass
    return text
