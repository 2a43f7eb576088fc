"""Timing, memory and worker processes shared by every benchmark mode.

Every measurement runs in a fresh interpreter (:func:`spawn`), so that
imports, caches and the allocator of one row never bias another, and
reports the median wall time of several steps after a warm-up. Steps that
are compared with each other (a stock head and its ISDA twin) are timed in
the same process, alternately, so that the machine's drift (CPU timings
here vary by up to 2x between runs) moves them together and their ratio
stays honest.
"""
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, Optional

import torch
from torch import Tensor

RESULT_TAG = 'BENCHMARK_RESULT '
ENTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     '__main__.py')


class BenchmarkError(RuntimeError):
    """A worker failed, or two things that must agree do not."""


def relative_error(got: Tensor, want: Tensor) -> float:
    """``max |got - want|`` over ``max |want|``."""
    got, want = got.detach().double().cpu(), want.detach().double().cpu()
    scale = want.abs().max().item() if want.numel() else 0.0
    return (got - want).abs().max().item() / max(scale, 1e-30)


def check_close(row: str, errors: Dict[str, float], rtol: float) -> None:
    """Raise :class:`BenchmarkError` if any relative error exceeds rtol."""
    bad = {k: v for k, v in errors.items() if not v <= rtol}
    if bad:
        raise BenchmarkError(
            f'{row}: disagreement beyond rtol={rtol:g}: ' +
            ', '.join(f'{k} {v:.2e}' for k, v in bad.items()) +
            '; the comparison would not be fair')


def _current_rss() -> int:
    """Resident set size now, in bytes (``/proc/self/statm``)."""
    with open('/proc/self/statm') as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE')


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (``VmHWM``) if allowed.

    ``ru_maxrss`` alone cannot be reset and starts, in a child, at the
    parent's peak, so it would hide the step's own peak.
    """
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _peak_rss(reset_ok: bool) -> int:
    """Peak RSS in bytes: ``VmHWM`` after a reset, else ``ru_maxrss``."""
    if reset_ok:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize(device)


def _repeats(first_s: float, repeats: Optional[int], budget_s: float,
             least: int = 3) -> int:
    if repeats is not None:
        return repeats
    return int(min(50, max(least, budget_s // max(first_s, 1e-6))))


def measure(step: Callable,
            device: str,
            repeats: Optional[int] = None,
            warmup: int = 1,
            budget_s: float = 6.0) -> Dict[str, float]:
    """Median time and peak added memory of ``step()``.

    Args:
        step (callable): One step; called ``warmup + repeats`` times.
        device (str): ``'cpu'`` or ``'cuda'``.
        repeats (int, optional): Timed steps. None: as many as fit in
            ``budget_s`` after the warm-up, between 3 and 50.
        warmup (int): Untimed steps first. Defaults to 1.
        budget_s (float): Time for the timed steps when ``repeats`` is None.
            Defaults to 6.

    Returns:
        dict: ``ms`` (median), ``min_ms``, ``repeats``, ``peak_mb`` (peak
        memory the steps add, MiB: resident set size on a CPU,
        ``torch.cuda.max_memory_allocated`` on a GPU).
    """
    cuda = device.startswith('cuda')
    gc.collect()
    _sync(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = _current_rss()
        reset_ok = _reset_peak_rss()
    start = time.perf_counter()
    for _ in range(max(warmup, 1)):
        step()
    _sync(device)
    first = (time.perf_counter() - start) / max(warmup, 1)
    times = []
    for _ in range(_repeats(first, repeats, budget_s)):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated(device) if cuda else
            _peak_rss(reset_ok)) - base
    return dict(
        ms=statistics.median(times) * 1e3,
        min_ms=min(times) * 1e3,
        repeats=len(times),
        peak_mb=max(peak, 0) / 2**20)


def measure_alternating(steps: Dict[str, Callable],
                        device: str,
                        repeats: Optional[int] = None,
                        warmup: int = 1,
                        budget_s: float = 10.0,
                        min_repeats: int = 3) -> Dict[str, dict]:
    """Times of several steps run in turn, round after round.

    Each round starts one step later in the order, so that no step always
    follows the same one (a step that frees memory makes the next one
    fault its pages back in).

    Arguments as in :func:`measure`; ``budget_s`` is for all the steps
    together, and at least ``min_repeats`` rounds are timed.

    Returns:
        dict: Per step name, ``ms`` (median), ``min_ms``, ``repeats`` and
        ``times`` (ms, by round: ratios of steps in one round are the
        least noisy comparison).
    """
    names = list(steps)
    start = time.perf_counter()
    for _ in range(max(warmup, 1)):
        for step in steps.values():
            step()
    _sync(device)
    first = (time.perf_counter() - start) / max(warmup, 1)
    times = {name: [] for name in names}
    for r in range(_repeats(first, repeats, budget_s, min_repeats)):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            steps[name]()
            _sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {
        name: dict(ms=statistics.median(t), min_ms=min(t), repeats=len(t),
                   times=t)
        for name, t in times.items()
    }


def paired_ratio(result: Dict[str, dict], step: str, base: str) -> float:
    """Median over rounds of ``step`` / ``base`` timed in the same round."""
    return statistics.median(
        a / b for a, b in zip(result[step]['times'], result[base]['times']))


def gemm_step(device: str, size: int = 2048):
    """A square float32 matrix product: timed beside a step, it gives this
    machine's GEMM rate (``2 size^3`` flops) under the same conditions."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    out = torch.empty_like(a)
    return lambda: torch.mm(a, b, out=out)


def spawn(spec: dict, threads: Optional[int] = None) -> dict:
    """Run one worker (``spec`` names the mode and its arguments) in a
    fresh interpreter, with ``threads`` torch threads, and return what it
    reports."""
    cmd = [sys.executable, ENTRY, '--worker', json.dumps(spec)]
    if threads is not None:
        cmd += ['--threads', str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if proc.returncode == 0 and line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    raise BenchmarkError(
        f'{spec}: the worker failed (exit {proc.returncode}):\n'
        f'{proc.stderr.strip() or proc.stdout.strip()}')


def device_name(device: str) -> str:
    """GPU name, or the CPU model from ``/proc/cpuinfo``."""
    if device.startswith('cuda'):
        return torch.cuda.get_device_name()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
