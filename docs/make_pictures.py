"""Draws the README's pictures from a real run, so they show what the tool prints today.

Usage:  python docs/make_pictures.py [--workdir /tmp/hpcingest-pictures] [--files 20000] [--ranks 2]

Starts the built-in iRODS zone (each request held 1 ms, so the pass lasts long enough to be
watched), generates a sample tree, runs ``hpcingest start --profile`` on it under mpiexec while
``hpcingest watch`` prints the progress line, then writes into docs/images/:

* ``progress.png``: a progress line from the middle of the pass (percentage and ETA shown);
* ``summary.png``: the end-of-pass summary the command printed;
* ``profile.png``: ``hpcingest profile``'s timeline of the pass.

The two text pictures are the exact text, drawn in a terminal's colours with matplotlib
(``pip install 'hpcingest[plot]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from hpcingest import sample  # noqa: E402
from hpcingest.launch import mpiexec_path  # noqa: E402
from hpcingest.zone.testing import start_zone  # noqa: E402

IMAGES = os.path.join(HERE, "images")


def terminal_png(lines: list[str], path: str) -> None:
    """``lines`` as a terminal shows them: light monospace text on a dark background."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    font_pt, dpi = 10, 100
    char_px, line_px = 0.6 * font_pt * dpi / 72, 1.35 * font_pt * dpi / 72
    width = (max(len(line) for line in lines) * char_px + 28) / dpi
    height = (len(lines) * line_px + 24) / dpi
    figure = Figure(figsize=(width, height), dpi=dpi, facecolor="#1e1e1e")
    for number, line in enumerate(lines):
        colour = "#8ae234" if line.startswith("$ ") else "#e6e6e6"
        figure.text(14 / dpi / width, 1 - (12 + (number + 0.8) * line_px) / dpi / height, line, color=colour,
                    family="DejaVu Sans Mono", fontsize=font_pt)
    figure.savefig(path, dpi=dpi, facecolor=figure.get_facecolor())


def running(record: str) -> bool:
    try:
        with open(record) as f:
            return json.load(f)["status"] == "running"
    except (OSError, ValueError):
        return False


def midway(lines: list[str]) -> str:
    """The progress line closest to half done, among those that know the total."""
    def done(line: str) -> float:
        percent = [part for part in line.split("  ") if part.endswith("%")]
        return abs(float(percent[0][:-1]) - 50) if percent and "ETA" in line else 1e9

    return min(lines, key=done)


def run_pass(command: list[str], jobs: str, env: dict) -> tuple[str, list[str]]:
    """One pass of the job, watched: what it printed, and the progress lines `watch` printed."""
    job = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    while job.poll() is None and not running(os.path.join(jobs, "project", "job.json")):
        time.sleep(0.1)
    watch = subprocess.Popen([sys.executable, "-m", "hpcingest", "watch", "project", "--job_dir", jobs,
                              "--interval", "1"], stdout=subprocess.PIPE, text=True, env=env)
    summary, _ = job.communicate()
    watched, _ = watch.communicate()
    if job.returncode != 0:
        raise SystemExit(f"the job failed ({job.returncode})")
    return summary, [line for line in watched.splitlines() if line.startswith("pass ")]


def touch_every_other_file(tree: str) -> None:
    """A second pass then has work to do, and knows its total from the first."""
    for number, (top, _, files) in enumerate(os.walk(tree)):
        for name in files[number % 2::2]:
            os.utime(os.path.join(top, name))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hpcingest-pictures"))
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--ranks", type=int, default=2)
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(IMAGES, exist_ok=True)
    zone = start_zone(os.path.join(args.workdir, "zone"), subprocess_mode=True, service_ms=1.0)
    try:
        env = {**os.environ, **zone.environ()}
        tree = os.path.join(args.workdir, "project")
        sample.generate(tree, files=args.files, seed=7)
        target, jobs = f"{zone.home}/project", os.path.join(args.workdir, "jobs")
        command = [mpiexec_path(), "-n", str(args.ranks), sys.executable, "-m", "hpcingest", "start", tree, target,
                   "--job_name", "project", "--job_dir", jobs, "--profile"]
        summary, _ = run_pass(command, jobs, env)
        shown = f"$ mpiexec -n {args.ranks} hpcingest start {tree} {target} --job_name project --profile"
        terminal_png([shown, *summary.rstrip("\n").splitlines()], os.path.join(IMAGES, "summary.png"))
        subprocess.run([sys.executable, "-m", "hpcingest", "profile", "project", "--job_dir", jobs, "--output",
                        args.workdir], check=True, env=env, stdout=subprocess.DEVNULL)
        shutil.copy(os.path.join(args.workdir, "profile-project-pass1.png"), os.path.join(IMAGES, "profile.png"))
        touch_every_other_file(tree)
        _, progress = run_pass(command, jobs, env)
        terminal_png(["$ hpcingest watch project", midway(progress)], os.path.join(IMAGES, "progress.png"))
    finally:
        zone.stop()
    print(f"pictures written to {IMAGES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
