"""Run board_runner.py on the device: as a subprocess (``local``) or over the system OpenSSH client."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from edgekit.device.address import Device
from edgekit.errors import EdgekitError

RUNNER = Path(__file__).with_name("board_runner.py")
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]


def _checked(cmd: list[str], device: Device, what: str, timeout: float = 600) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise EdgekitError(f"'{cmd[0]}' is not installed", "install the OpenSSH client (apt install openssh-client)") from None
    except subprocess.TimeoutExpired:
        raise EdgekitError(f"{what} on {device.describe()} timed out", "check the board is up and not overloaded") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        if device.kind == "ssh" and done.returncode == 255:
            raise EdgekitError(f"cannot reach device {device.host} ({last})",
                               f"check the address and that `ssh -p {device.port} {device.login}` logs in without a password")
        raise EdgekitError(f"{what} failed on {device.describe()}: {last}",
                           "install ai-edge-litert (or tflite-runtime), onnxruntime or executorch, and numpy, in the "
                           "board's python3")
    return done.stdout


def _parse(stdout: str, device: Device) -> dict[str, Any]:
    try:
        return json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise EdgekitError(f"the runner on {device.describe()} printed no result", "run it by hand to see why") from None


def check_reachable(device: Device) -> None:
    """Log in once before any work starts, so an unreachable board fails fast (exit 2) rather than after training."""
    if device.kind == "ssh":
        _checked(["ssh", "-p", str(device.port), *SSH_OPTIONS, device.login, "true"], device, "logging in", timeout=30)


def measure_on_device(device: Device, model: Path, threads: int, runs: int = 100, warmup: int = 10) -> dict[str, Any]:
    """p50/p90 milliseconds of ``model`` measured on the device, with its runtime's name and version."""
    args = ["--threads", str(threads), "--runs", str(runs), "--warmup", str(warmup)]
    if device.kind == "local":
        return {**_parse(_checked([sys.executable, str(RUNNER), str(model), *args], device, "the runner"), device),
                "device": device.describe()}
    ssh = ["ssh", "-p", str(device.port), *SSH_OPTIONS, device.login]
    folder = _checked([*ssh, "mktemp -d"], device, "mktemp").strip()
    try:
        _checked(["scp", "-P", str(device.port), *SSH_OPTIONS, str(RUNNER), str(model), f"{device.login}:{folder}/"],
                 device, "copying the model")
        remote = f"python3 {shlex.quote(folder + '/' + RUNNER.name)} {shlex.quote(folder + '/' + model.name)} " + \
            " ".join(args)
        result = _parse(_checked([*ssh, remote], device, "the runner"), device)
    finally:
        subprocess.run([*ssh, f"rm -rf {shlex.quote(folder)}"], capture_output=True, timeout=60)
    return {**result, "device": device.describe()}
