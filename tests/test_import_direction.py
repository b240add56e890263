"""Packages import one way only: each may import the layers below it, never one above or beside it.

Read from the source (AST), function-level imports included; imports under ``if TYPE_CHECKING:`` are type
names only and never run, so they are left out. docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgekit"
# Bottom to top. Units in one layer must not import each other either.
LAYERS: list[set[str]] = [
    {"__init__", "errors", "registry"},
    {"pipeline"},                 # runner, resume, lock, fingerprints, atomic writes
    {"data", "device"},
    {"runtime"},                  # onnxruntime sessions, LiteRT interpreters, host facts
    {"models"},
    {"quantize", "export"},
    {"estimate"},
    {"bench", "choose", "layers"},  # measurements, budgets, reports; the student choice; per-layer INT8 error
    {"widen"},                    # layers kept float for an accuracy goal (reads the per-layer error)
    {"distill"},
    {"detect"},                   # detection building blocks
    {"config"},
    {"tasks"},
    {"stages"},
    {"inference"},
    {"chain", "tune"},            # the wiring: stage order, preflight, the tune search
    {"cli_options"},
    {"cli"},
    {"__main__"},
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def _unit(parts: list[str]) -> str:
    """The package or top-level module a dotted path below edgekit belongs to."""
    return parts[0].removesuffix(".py") if parts else "__init__"


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            lines |= {n.lineno for n in ast.walk(node) if hasattr(n, "lineno")}
    return lines


def imports() -> list[tuple[str, str, str]]:
    """(importing unit, imported unit, file) for every edgekit import between two units."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).parts
        here = _unit(list(rel))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] if node.module != "edgekit" else [
                    f"edgekit.{a.name}" if a.name in RANK else "edgekit" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "edgekit" and node.lineno not in skip and (there := _unit(parts[1:])) != here:
                    found.append((here, there, "/".join(rel)))
    return found


def test_every_unit_has_a_layer() -> None:
    units = {_unit([p.name]) for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert sorted(units - set(RANK)) == []


def test_packages_import_only_downward() -> None:
    upward = [f"{f}: {a} imports {b}" for a, b, f in imports() if RANK[b] >= RANK[a]]
    assert upward == []


def test_the_check_sees_an_upward_import() -> None:
    """The walk finds function-level imports and ignores TYPE_CHECKING ones (so the test above can fail)."""
    edges = {(a, b) for a, b, _ in imports()}
    assert ("cli", "chain") in edges  # imported inside a function
    assert ("tasks", "stages") not in edges  # type names only
