"""kill -9 at random instants of a default `edgekit compress`; does the rerun finish with the same results?

    python benchmarks/kill_resume.py [--trials 10] [--seed 0] [--continue]

First one uninterrupted `edgekit compress --target rpi4` (the reference; its duration T). Then per
trial: a fresh run folder, the same command, SIGKILL at an instant drawn uniformly from (2 s, T), and the
same command again, which must finish. Compared with the reference: every stage's result (accuracies,
loss histories, parameters; timings aside), every artifact's sha256, accuracy and agreement. Latency is
measured anew by each run and is not compared. Also reported: the per-epoch checkpoint overhead of the
reference run, the seconds spent writing checkpoints over each training stage's seconds.
Writes benchmarks/results/kill_resume.{json,md} after every trial; ``--continue`` goes on from an unfinished
file of the same commit (the reference's results are stored in it), so a long run survives a cut-off.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
EDGEKIT = Path(sys.executable).parent / "edgekit"
COMMAND = ["compress", "--target", "rpi4"]
TRAINING = ("teacher", "distill", "quantize")


def compress(out: Path, log: Path) -> tuple[int, float]:
    started = time.perf_counter()
    with open(log, "w") as err:
        rc = subprocess.run([str(EDGEKIT), *COMMAND, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=err).returncode
    return rc, time.perf_counter() - started


def killed_compress(out: Path, log: Path, after: float) -> int:
    with open(log, "w") as err:
        proc = subprocess.Popen([str(EDGEKIT), *COMMAND, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=err)
        try:
            proc.wait(timeout=after)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()


def results(run: Path) -> dict[str, Any]:
    """What an interruption must not change."""
    out: dict[str, Any] = {}
    for stage in (*TRAINING, "export"):
        result = json.loads((run / ("artifacts" if stage == "export" else stage) / "stage.json").read_text())["result"]
        out[stage] = _without_timings(result)
    report = json.loads((run / "report.json").read_text())
    out["artifacts"] = [{k: a.get(k) for k in ("name", "sha256", "bytes", "accuracy", "agreement")} for a in report["artifacts"]]
    return out


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        # timings, and the soft-label cache's bookkeeping (a resumed run computes only the epochs it runs)
        return {k: _without_timings(v) for k, v in value.items() if "second" not in k and k != "soft_label_epochs"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def stage_at_kill(log: Path) -> str:
    """The stage the killed run was in: the one after the last stage it finished (stages print only when done)."""
    order = ("teacher", "distill", "quantize", "export", "benchmark")
    finished = [line.split(":")[0] for line in log.read_text(errors="replace").splitlines()
                if line.split(":")[0] in order and (" done in " in line or line.endswith("up to date"))]
    if not finished:
        return "teacher"
    nxt = order.index(finished[-1]) + 1
    return order[nxt] if nxt < len(order) else "reports"


def resumed_lines(rerun_log: str) -> list[str]:
    """What the rerun said of the interrupted stage: resumed at an epoch, or finished and restored from its checkpoint."""
    return [line for line in rerun_log.splitlines()
            if line.startswith("resuming ") or line.endswith("restored from its checkpoint")]


def overhead(run: Path) -> dict[str, dict[str, float]]:
    rows = {}
    for stage in TRAINING:
        record = json.loads((run / stage / "stage.json").read_text())
        ck = record.get("checkpoints", {"writes": 0, "seconds": 0.0})
        rows[stage] = {"stage_seconds": record["seconds"], "checkpoint_writes": ck["writes"],
                       "checkpoint_seconds": ck["seconds"], "overhead_pct": round(100 * ck["seconds"] / record["seconds"], 3)}
    return rows


def current_commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--continue", dest="resume", action="store_true",
                        help="go on from an unfinished results file of the same commit (its reference is reused)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgekit-kill-"))
    state_path = RESULTS / "kill_resume.json"
    state = json.loads(state_path.read_text()) if args.resume and state_path.is_file() else None
    if state is not None and (state.get("commit") != current_commit() or state.get("complete")):
        print(f"{state_path} is complete or from commit {state.get('commit')}: starting afresh")
        state = None
    if state is None:
        rc, reference_seconds = compress(work / "ref", work / "ref.log")
        if rc != 0:
            print((work / "ref.log").read_text()[-3000:])
            return 1
        state = {"command": f"python benchmarks/kill_resume.py --trials {args.trials} --seed {args.seed}",
                 "commit": current_commit(), "python": platform.python_version(),
                 "host": json.loads((work / "ref" / "report.json").read_text())["host"],
                 "reference_seconds": round(reference_seconds, 1),
                 "reference": json.loads(json.dumps(results(work / "ref"))),
                 "checkpoint_overhead": overhead(work / "ref"), "trials": [], "complete": False}
        write_results(state)
    rng = random.Random(args.seed)
    instants = [round(rng.uniform(2.0, state["reference_seconds"]), 1) for _ in range(args.trials)]
    for i in range(len(state["trials"]), args.trials):
        at = instants[i]
        out = work / f"trial{i}"
        killed_rc = killed_compress(out, work / f"trial{i}.killed.log", at)
        rc, rerun_seconds = compress(out, work / f"trial{i}.rerun.log")
        rerun_log = (work / f"trial{i}.rerun.log").read_text(errors="replace")
        same = rc == 0 and json.loads(json.dumps(results(out))) == state["reference"]
        state["trials"].append({
            "kill_at_s": at, "killed_rc": killed_rc, "stage_at_kill": stage_at_kill(work / f"trial{i}.killed.log"),
            "rerun_rc": rc, "rerun_seconds": round(rerun_seconds, 1),
            "up_to_date": [line.split(":")[0] for line in rerun_log.splitlines() if line.endswith(": up to date")],
            "resumed": resumed_lines(rerun_log),
            "identical": same})
        print(json.dumps(state["trials"][-1]), flush=True)
        if same:
            shutil.rmtree(out, ignore_errors=True)
        state["complete"] = len(state["trials"]) == args.trials
        write_results(state)  # after every trial: an interrupted benchmark keeps what it measured
    print((RESULTS / "kill_resume.md").read_text())
    return 0 if state["identical"] == len(state["trials"]) else 1


def write_results(state: dict[str, Any]) -> None:
    trials = state["trials"]
    state["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    state["identical"] = sum(t["identical"] for t in trials)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "kill_resume.json").write_text(json.dumps(state, indent=2) + "\n")
    lines = ["# kill -9 at random instants of `edgekit compress --target rpi4`, then the same command again", "",
             f"Command: `{state['command']}` (commit {state['commit'][:10]})  ", f"Date: {state['date']}  ",
             f"Host: {state['host']['cpu']}, {state['host']['cores']} cores", "",
             f"Reference (never killed): {state['reference_seconds']} s."
             + ("" if state["complete"] else f" **Unfinished: {len(trials)} trials so far.**"), "",
             "| Trial | Killed at s | Stage at kill | Rerun: up to date | Rerun: resumed | Rerun s | Rerun exit | Identical to reference |",
             "|---|---|---|---|---|---|---|---|"]
    for i, t in enumerate(trials):
        lines.append(f"| {i + 1} | {t['kill_at_s']} | {t['stage_at_kill']} | {', '.join(t['up_to_date']) or '-'} | "
                     f"{'; '.join(t['resumed']) or '-'} | {t['rerun_seconds']} | {t['rerun_rc']} | {'yes' if t['identical'] else 'NO'} |")
    lines += ["", f"**{state['identical']}/{len(trials)}** reruns finished with results identical to the reference "
              "(every stage's result, every artifact's sha256, accuracy and agreement; latency is measured anew).", "",
              "Per-epoch checkpoint overhead in the reference run:", "",
              "| Stage | Stage s | Checkpoint writes | Checkpoint s | Overhead |", "|---|---|---|---|---|"]
    for stage, row in state["checkpoint_overhead"].items():
        lines.append(f"| {stage} | {row['stage_seconds']:.1f} | {row['checkpoint_writes']} | {row['checkpoint_seconds']:.3f} | "
                     f"{row['overhead_pct']:.2f} % |")
    (RESULTS / "kill_resume.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
