"""Hardware target profiles: ``targets/<name>.toml`` shipped in the wheel, or a user's TOML file."""

from __future__ import annotations

import difflib
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

REQUIRED = {"name": str, "description": str, "cpu": dict, "runtime": dict}
REQUIRED_CPU = {"cores": int, "core": str, "arch": str, "clock_ghz": (int, float), "isa": list}
REQUIRED_RUNTIME = {"name": str, "threads": int}
REQUIRED_FIGURE = {"model": str, "precision": str, "threads": int, "ms": (int, float), "source": str}


def _targets_folder() -> Any:
    """``edgekit.targets`` in an installed wheel; the checkout's ``targets/`` in an editable install."""
    try:
        return resources.files("edgekit.targets")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "targets"


def _packaged() -> dict[str, Any]:
    folder = _targets_folder()
    return {f.name[:-5]: f for f in folder.iterdir() if f.name.endswith(".toml")}


def target_names() -> list[str]:
    return sorted(_packaged())


def _check(table: dict[str, Any], required: dict[str, Any], where: str, source: str) -> None:
    for key, kind in required.items():
        if key not in table:
            raise EdgekitError(f"target profile {source} lacks the key '{where}{key}'", f"add {where}{key} to the file")
        if not isinstance(table[key], kind) or isinstance(table[key], bool):
            raise EdgekitError(f"target profile {source}: '{where}{key}' has the wrong type",
                               f"see targets/rpi4.toml for the expected form of {where}{key}")


def _fill_measured(profile: dict[str, Any]) -> None:
    """The ``host`` profile describes whatever machine loads it."""
    from edgekit.runtime.versions import host_info

    info = host_info()
    profile["cpu"].update({"cores": int(info["cores"]), "core": str(info["cpu"]), "arch": str(info["machine"])})
    if profile["runtime"]["threads"] == 0:
        profile["runtime"]["threads"] = int(info["cores"])


def _check_figures(profile: dict[str, Any], source: str) -> None:
    from edgekit.estimate.reference_costs import reference_summaries

    figures = profile.get("published", [])
    if not isinstance(figures, list):
        raise EdgekitError(f"target profile {source}: 'published' must be a list of tables",
                           "see targets/rpi4.toml for the form of published figures")
    known = reference_summaries()
    for i, fig in enumerate(figures):
        if not isinstance(fig, dict):
            raise EdgekitError(f"target profile {source}: published[{i}] is not a table", "write { model = ..., ms = ... }")
        _check(fig, REQUIRED_FIGURE, f"published[{i}].", source)
        if fig["model"] not in known:
            close = difflib.get_close_matches(fig["model"], list(known), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise EdgekitError(f"target profile {source}: published[{i}].model '{fig['model']}' is not a reference network",
                               f"{hint}use one of {', '.join(sorted(known))}")
        if fig["precision"] not in ("fp32", "int8"):
            raise EdgekitError(f"target profile {source}: published[{i}].precision must be fp32 or int8",
                               "fix the figure's precision")
        if fig["threads"] < 1 or not fig["ms"] > 0:
            raise EdgekitError(f"target profile {source}: published[{i}] needs threads >= 1 and ms > 0",
                               "fix the figure's threads / ms")


def _check_facts(profile: dict[str, Any], source: str) -> None:
    """A profile with published figures states the hardware facts its estimate's prior comes from, each with its
    source (cost_model.prior_values): the prior is never a number fitted to figures."""
    from edgekit.estimate.cost_model import FACTS

    if not profile.get("published"):
        return
    est = profile.get("estimate", {})
    sources = est.get("sources", {})
    if not isinstance(sources, dict):
        raise EdgekitError(f"target profile {source}: 'estimate.sources' must be a table", "write it as [estimate.sources]")
    for key in FACTS:
        value = est.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise EdgekitError(f"target profile {source}: 'estimate.{key}' must be a positive number (a hardware fact "
                               "the estimate's prior comes from)", f"add estimate.{key}; see targets/rpi4.toml")
        if not isinstance(sources.get(key), str) or not sources[key].strip():
            raise EdgekitError(f"target profile {source}: 'estimate.sources.{key}' must say where "
                               f"estimate.{key} comes from", f"add estimate.sources.{key} (a URL or a document)")


def parse_target(text: str, source: str) -> dict[str, Any]:
    try:
        profile = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EdgekitError(f"target profile {source} is not valid TOML ({exc})", "fix the file's syntax") from None
    _check(profile, REQUIRED, "", source)
    _check(profile["cpu"], REQUIRED_CPU, "cpu.", source)
    _check(profile["runtime"], REQUIRED_RUNTIME, "runtime.", source)
    if profile.get("measured"):
        _fill_measured(profile)
    if profile["runtime"]["threads"] < 1 or profile["cpu"]["cores"] < 1:
        raise EdgekitError(f"target profile {source}: cores and threads must be at least 1", "fix cpu.cores / runtime.threads")
    if not profile.get("measured") and not profile["cpu"]["clock_ghz"] > 0:
        raise EdgekitError(f"target profile {source}: cpu.clock_ghz must be positive", "fix cpu.clock_ghz")
    for key in ("budgets", "estimate"):
        if not isinstance(profile.get(key, {}), dict):
            raise EdgekitError(f"target profile {source}: '{key}' must be a table", f"write it as [{key}]")
    _check_figures(profile, source)
    _check_facts(profile, source)
    return profile


def load_target(name_or_path: str) -> dict[str, Any]:
    """A packaged profile by name (``rpi4``) or any ``.toml`` file path."""
    packaged = _packaged()
    if name_or_path in packaged:
        return parse_target(packaged[name_or_path].read_text(encoding="utf-8"), f"'{name_or_path}'")
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise EdgekitError(f"target file {path} does not exist", "pass an existing .toml profile or a target name")
        return parse_target(path.read_text(encoding="utf-8"), str(path))
    close = difflib.get_close_matches(name_or_path, list(packaged), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise EdgekitError(f"unknown target '{name_or_path}'",
                       f"{hint}choose one of {', '.join(sorted(packaged))} (see `edgekit targets`) or pass a .toml file")
