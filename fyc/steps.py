"""Run one documented command from the repository root: echo it, run it, stop on failure (demo, toy study)."""
from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str]) -> str:
    """Run ``cmd`` in the repository root, echo it and its stdout; exit with the failing command on error."""
    print(f"\n$ {shlex.join(cmd)}", flush=True)
    start = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=None, text=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        raise SystemExit(f"step failed ({proc.returncode}): {shlex.join(cmd)}")
    print(f"  ({time.time() - start:.0f} s)", flush=True)
    return proc.stdout
