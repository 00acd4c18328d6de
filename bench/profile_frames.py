"""A sampling profile of the server's processes (py-spy), and its top frames.

    with Profiler(pid) as profiler:     # py-spy record --format raw on pid and its children
        ...load...
    profiler.stacks                     # [(frames root first, samples)]
    top_frames(profiler.stacks)         # {"samples", "self": [...], "inclusive": [...]}

py-spy samples every thread that is running Python code (not idle) `rate` times a second, so a
frame's share of the samples is its share of the process's busy time: multiplied by the server's
CPU per call it estimates the frame's microseconds per call (`frame_cost_us`). Time spent in C
called from Python (uvloop's loop, gRPC's Cython, psycopg's socket waits, protobuf) counts as
the Python frame that called it, unless `native` is set (then C frames appear, at a higher cost
to py-spy and with the process paused at each sample).

py-spy ships as a binary wheel (PyPI `py-spy`, requirements.txt); it reads the process's memory
with ptrace permissions, which root (or CAP_SYS_PTRACE) has.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Iterable

TOP = 15
RATE_HZ = 100
STOP_TIMEOUT_S = 30.0

Stack = tuple[tuple[str, ...], int]
# Frames every sample of a thread passes through (the entry point, the event loop's run, a thread's
# start): their self time is real (the C under them: uvloop, gRPC's Cython), but as inclusive
# frames they only say "everything", so they are left out of the inclusive ranking.
ENVELOPE = frozenset({
    "_run_module_as_main", "_run_code", "<module>", "main", "Runner.run", "run", "Thread.run",
    "Thread._bootstrap", "Thread._bootstrap_inner",
})
# What a frame's self time is, where the Python frame is only the caller of C code.
MEANING = {
    "Runner.run (asyncio/runners.py)": "the event loop's C: uvloop, gRPC's Cython callbacks, protobuf parsing",
    "Thread.run (threading.py)": "a thread's C: gRPC's completion-queue poller",
}


def parse_collapsed(text: str) -> list[Stack]:
    """py-spy's `--format raw` (collapsed stacks: `root;...;leaf COUNT` a line) as (frames, count)."""
    stacks = []
    for line in text.splitlines():
        frames, _, count = line.rstrip().rpartition(" ")
        if frames and count.isdigit():
            names = frames.split(";")
            if names[0].startswith("process "):  # --subprocesses: which process, not a frame
                names = names[1:]
            stacks.append((tuple(names), int(count)))
    return stacks


def short_frame(frame: str) -> str:
    """`function (path)` with the path from the package on: `get_balance (billing/service/balance.py)`,
    not the checkout's or the venv's absolute path (line numbers, if any, are kept)."""
    function, sep, location = frame.partition(" (")
    if not sep:
        return frame
    for marker in ("site-packages/", "/src/", "/lib/python"):
        at = location.rfind(marker)
        if at >= 0:
            location = location[at + len(marker):]
            if marker == "/lib/python":  # the standard library: drop "3.11/"
                location = location.partition("/")[2] or location
            break
    return f"{function} ({location}"


def top_frames(stacks: Iterable[Stack], limit: int = TOP) -> dict:
    """The `limit` frames with the most samples by self time (the frame was the leaf: running its
    own code or the C it calls) and by inclusive time (the frame was anywhere in the stack; a
    recursive frame counts once a sample). Shares are percent of all samples; ties go by name."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for frames, count in stacks:
        if not frames or count <= 0:
            continue
        names = [short_frame(frame) for frame in frames]
        total += count
        own[names[-1]] += count
        packages[package(names[-1])] += count
        for name in set(names):
            if name.partition(" (")[0] not in ENVELOPE:
                inclusive[name] += count

    def ranked(counter: Counter[str]) -> list[dict]:
        order = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [{"frame": name, "samples": n, "percent": round(100.0 * n / total, 1)} for name, n in order]

    return {"samples": total, "self": ranked(own), "inclusive": ranked(inclusive), "packages": ranked(packages)}


def package(frame: str) -> str:
    """Where a (short) frame's code lives: the top package, ours by layer (`billing/api`), the
    event loop's and threads' C by what MEANING says runs there."""
    if frame in MEANING:
        return MEANING[frame].partition(":")[0]
    location = frame.partition(" (")[2].rstrip(")")
    parts = location.split("/")
    if parts[0] in ("billing", "google") and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else location or frame


def frame_cost_us(frames: list[dict], cpu_per_call_us: float | None) -> list[dict]:
    """Each frame with `us_per_call`: its share of the samples times the server CPU per call."""
    if cpu_per_call_us is None:
        return frames
    return [frame | {"us_per_call": round(frame["percent"] / 100.0 * cpu_per_call_us, 1)} for frame in frames]


def py_spy() -> str | None:
    """The py-spy binary: beside this Python (the venv's bin) or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """`py-spy record --format raw` on a process and its children while the block runs. On exit
    `stacks` holds the samples, `cpu_s` py-spy's own CPU (it runs on the same cores as the server)
    and `error` why there is no profile, if there is none (the measured figures do not depend on it)."""

    def __init__(self, pid: int, rate: int = RATE_HZ, native: bool = False):
        self.pid, self.rate, self.native = pid, rate, native
        self.stacks: list[Stack] = []
        self.cpu_s: float | None = None
        self.error: str | None = None
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Profiler":
        binary = py_spy()
        if self.rate <= 0:
            self.error = "profiling off (--profile-rate 0)"
            return self
        if binary is None:
            self.error = "py-spy not installed (pip install -r requirements.txt)"
            return self
        self.directory = tempfile.TemporaryDirectory(prefix="py-spy-")
        self.output = Path(self.directory.name) / "profile.raw"
        # Not paused per sample (--nonblocking) unless native frames are asked for (they need it):
        # pausing the server 100 times a second would cost the latency under measurement.
        command = [binary, "record", "--pid", str(self.pid), "--subprocesses", "--format", "raw",
                   "--nolineno", "--rate", str(self.rate), "--output", str(self.output)]
        command += ["--native"] if self.native else ["--nonblocking"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def __exit__(self, *exc) -> None:
        if self.process is None:
            return
        try:
            self.process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
            self.cpu_s = _wait_cpu_seconds(self.process, STOP_TIMEOUT_S)
            if self.output.exists():
                self.stacks = parse_collapsed(self.output.read_text())
            if not self.stacks:
                stderr = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                self.error = f"py-spy wrote no samples (exit {self.process.returncode}): {stderr[-500:]}"
        finally:
            if self.process.stderr:
                self.process.stderr.close()
            self.directory.cleanup()


def _wait_cpu_seconds(process: subprocess.Popen, timeout_s: float) -> float | None:
    """Waits for the child (killed after `timeout_s`) and returns the CPU it used (user+sys, from
    wait4's rusage; Popen.wait would not give it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            process.kill()
            deadline = float("inf")
        time.sleep(0.05)
