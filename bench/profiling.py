"""Sampling profiles of the serving processes with py-spy (`python -m bench --profile`).

py-spy attaches from outside (no change to the servers), samples every thread, and
writes collapsed stacks; `summary` turns them into the functions that were on the stack
most often (inclusive), which is what points at a cause.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path


class Profiler:
    def __init__(self, outdir: Path, name: str, pids: dict[str, list[int]], seconds: int) -> None:
        self.outdir = outdir
        self.name = name
        self.runs: list[tuple[str, int, Path, subprocess.Popen]] = []
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not Path(spy).exists():
            print("bench: py-spy is not installed; no profile taken", file=sys.stderr)
            return
        for role, role_pids in pids.items():
            for pid in role_pids:
                out = outdir / f"profile-{name}-{role}-{pid}.txt"
                proc = subprocess.Popen(  # noqa: S603 - our own py-spy, our own pids
                    [spy, "record", "--pid", str(pid), "--duration", str(seconds),
                     "--rate", "200", "--format", "raw", "--nonblocking", "-o", str(out)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                self.runs.append((role, pid, out, proc))

    def finish(self, top: int = 25) -> dict:
        """Wait for py-spy, then the hottest functions per role (share of samples)."""
        by_role: dict[str, Counter] = {}
        totals: Counter = Counter()
        for role, _pid, out, proc in self.runs:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
            if not out.exists():
                continue
            counter = by_role.setdefault(role, Counter())
            for line in out.read_text(errors="replace").splitlines():
                stack, _, count = line.rpartition(" ")
                if not count.isdigit():
                    continue
                totals[role] += int(count)
                for frame in set(stack.split(";")):
                    counter[frame] += int(count)
        return {
            role: [
                {"frame": frame, "share": round(n / totals[role], 3)}
                for frame, n in counter.most_common(top)
            ]
            for role, counter in by_role.items()
            if totals[role]
        }
