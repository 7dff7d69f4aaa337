"""Figures for the README's "Reliability" section: the bad-input corpus through every command that
reads images, SIGKILLs injected into training, and `srgan serve` under load.

    .venv/bin/python benchmarks/reliability.py [--work DIR] [--skip-training] [--skip-web]

Every command runs as a real subprocess on the corpus of ``tests/bad_inputs.py``; a command
"crashes" when it exits with anything but 0/1 or prints a traceback. The training faults and the
web load are the same routines the tests run (``tests/test_fault_tolerance.py``,
``tests/test_web_load.py``). Takes about two minutes on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bad_inputs import make_corpus  # noqa: E402


def _run(args: list[str], env_extra: dict | None = None) -> tuple[int, str, str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "srgan.cli.main", *args], capture_output=True, env=env, timeout=600)
    decode = lambda b: b.decode("utf-8", "replace")  # noqa: E731
    return done.returncode, decode(done.stdout), decode(done.stderr), time.monotonic() - start


def _row(command: str, processed: int, refused: int, code: int, err: str, seconds: float) -> dict:
    """One command's figures; "tried" counts every entry it met (processed or refused with a reason)."""
    crashed = code not in (0, 1) or "Traceback" in err
    return {"command": command, "tried": processed + refused, "processed": processed, "refused": refused,
            "exit": code, "crashed": crashed, "seconds": seconds}


def corpus_figures(work: Path, model: Path) -> tuple[list[dict], int]:
    corpus = work / "corpus"
    cases = make_corpus(corpus)
    rows = []

    code, out, err, seconds = _run(["data", "prepare", str(corpus), "--out", str(work / "dataset"), "--hr-patch", "32",
                                    "--workers", "1"])
    with open(work / "dataset" / "manifest.csv", newline="", encoding="utf-8") as fh:
        kept = sum(1 for _ in csv.DictReader(fh))
    with open(work / "dataset" / "rejected.csv", newline="", encoding="utf-8") as fh:
        rejected = sum(1 for _ in csv.DictReader(fh))
    rows.append(_row("srgan data prepare", kept, rejected, code, err, seconds))

    code, out, err, seconds = _run(["data", "eda", str(corpus), "--out", str(work / "eda"), "--workers", "1"])
    eda = json.loads((work / "eda" / "eda.json").read_text())
    rows.append(_row("srgan data eda", eda["dataset"]["analysed"], len(eda["skipped"]), code, err, seconds))

    code, out, err, seconds = _run(["evaluate", "--model", "bicubic", "--data", str(corpus), "--no-perceptual",
                                    "--out", str(work / "eval"), "--device", "cpu"])
    summary = json.loads((work / "eval" / "summary.json").read_text())
    evaluated = summary["results"][corpus.name]["bicubic"]["n"]
    rows.append(_row("srgan evaluate", evaluated, len(summary["skipped"]), code, err, seconds))

    code, out, err, seconds = _run(["upscale", str(corpus), "-o", str(work / "up"), "--model", str(model),
                                    "--device", "cpu", "--no-progress"])
    upscaled = int(re.search(r"upscaled (\d+) of \d+ file", out).group(1))
    reported = sum(1 for line in err.splitlines() if line.startswith("srgan: "))  # one line per refused file
    rows.append(_row("srgan upscale", upscaled, reported, code, err, seconds))

    import httpx

    from test_web_load import serve

    regular = [c for c in cases if c.regular and (corpus / c.name).is_file()]
    (work / "serve-corpus").mkdir()
    with serve(work / "serve-corpus", model) as server:
        start, statuses = time.monotonic(), []
        for case in regular:
            response = httpx.post(f"{server.url}/api/upscale", content=(corpus / case.name).read_bytes(),
                                  headers={"content-type": "image/png"}, timeout=120)
            statuses.append(response.status_code)
        log = server.log
    rows.append(_row("srgan serve (POST /api/upscale)", statuses.count(200),
                     sum(400 <= s < 500 for s in statuses), 0 if all(s < 500 for s in statuses) else 2,
                     log.read_text(errors="replace"), time.monotonic() - start))
    return rows, len(cases)


def web_figures(work: Path, model: Path) -> dict:
    import httpx

    from test_web_load import load, png_bytes, rss_mb, serve

    work.mkdir(parents=True, exist_ok=True)
    with serve(work, model) as server:
        load(server.url, requests=20, clients=4)  # warm-up
        baseline, _ = rss_mb(server.pid)
        figures = load(server.url, requests=200, clients=20)
        _, peak_small = rss_mb(server.pid)
        # 20 clients at once with the largest input this server takes (512x512): the gate upscales
        # two at a time, so memory does not grow with the number of clients.
        body = png_bytes(7, 512)

        def big(_: int) -> int:
            return httpx.post(f"{server.url}/api/upscale", content=body, headers={"content-type": "image/png"},
                              timeout=600).status_code

        start = time.monotonic()
        with ThreadPoolExecutor(20) as pool:
            big_statuses = list(pool.map(big, range(20)))
        big_seconds = time.monotonic() - start
        current, peak = rss_mb(server.pid)
    probe = "import torch; print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])"
    torch_only = int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout) / 1024
    return {**figures, "baseline_mb": baseline, "peak_small_mb": peak_small, "peak_mb": peak, "after_mb": current,
            "big_ok": big_statuses.count(200), "big_seconds": big_seconds, "torch_import_mb": torch_only}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-web", action="store_true")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="srgan-reliability-"))
    work.mkdir(parents=True, exist_ok=True)
    from test_web_load import tiny_model

    model = tiny_model(work)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; work in {work}\n")

    (work / "corpus-run").mkdir()
    rows, kinds = corpus_figures(work / "corpus-run", model)
    print(f"Bad-input corpus: {kinds} files (tests/bad_inputs.py)")
    print(f"{'command':34s} {'tried':>5s} {'processed':>9s} {'refused':>7s} {'exit':>4s} {'crashed':>7s} {'s':>6s}")
    for r in rows:
        print(f"{r['command']:34s} {r['tried']:5d} {r['processed']:9d} {r['refused']:7d} {r['exit']:4d} "
              f"{'yes' if r['crashed'] else 'no':>7s} {r['seconds']:6.1f}")

    if not args.skip_training:
        from test_fault_tolerance import EVERY, TOTAL, run_with_faults

        (work / "training").mkdir()
        faults = run_with_faults(work / "training")
        lost = [logged - resumed for logged, resumed in faults.resumes]
        print(f"\nTraining faults: {faults.kills} SIGKILLs ({faults.kills_mid_write} inside a checkpoint write) "
              f"+ {faults.torn_lines} torn metrics line; {len(faults.resumes)} resumes, each from the last good "
              f"checkpoint, losing {min(lost)}-{max(lost)} iterations (interval {EVERY}); "
              f"{faults.checkpoints_checked} checkpoint loads, 0 damaged; {TOTAL} iterations in "
              f"{faults.seconds:.0f} s")

    if not args.skip_web:
        web = web_figures(work / "web", model)
        print(f"\nWeb: {web['requests']} requests from {web['clients']} concurrent clients in {web['seconds']:.1f} s "
              f"({web['ok']} upscaled, {web['refused']} broken uploads refused with 400), all answered correctly")
        print(f"     then 20 concurrent 512x512 uploads: {web['big_ok']}/20 upscaled in {web['big_seconds']:.1f} s")
        print(f"     server RSS: {web['baseline_mb']:.0f} MB at rest ({web['torch_import_mb']:.0f} MB is `import torch` "
              f"here), peak {web['peak_small_mb']:.0f} MB after the 200 small requests, {web['peak_mb']:.0f} MB "
              f"after the 512x512 burst")


if __name__ == "__main__":
    main()
