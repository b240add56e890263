"""Inspect a ``.pt2`` archive before torch.export.load deserializes any of it.

torch.export.load (torch 2.14, ``torch/export/pt2_archive/_package.py`` and ``torch/_export/serde``) runs
code from the file in more ways than ``torch.load``:

- ``data/constants/opaque_obj_*`` go through ``pickle.loads``, ``custom_obj_*`` through
  ``torch._C._pickle_load_obj``, and a weight or constant whose config says ``use_pickle`` through
  ``torch.load(weights_only=False)``; legacy ``data/weights/<model>.pt`` files and the sample inputs through
  ``torch.load`` with a fallback to ``weights_only=False``;
- ``models/<model>.json`` is plain JSON, but every symbolic-shape ``expr_str`` in it goes through
  ``sympy.sympify`` (which evaluates Python), ``guards_code`` is ``exec``-ed when ``.module()`` is called,
  and a node ``target`` may name any callable reachable from ``torch``, ``math`` or ``_operator``
  (``torch.os.system``), called when the model runs;
- ``data/aotinductor/`` holds compiled shared libraries that are loaded.

So this is an allow-list: only the entries a ``torch.export.save`` of a plain model writes, only raw tensor
payloads, and a model JSON whose operators are ATen ops, whose expressions are plain arithmetic on shape
symbols and which carries no guards code, custom objects or subgraphs. Anything else is refused, unread.
The records are listed and read with torch's own zip reader, so both see the same entries. The sample
inputs remain a (tensor-only) pickle; the caller loads the archive with ``torch.load`` forced to
``weights_only=True`` as a second layer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

_NAME = r"[A-Za-z0-9_]+"
# The records a torch.export.save of a plain model writes, relative to the archive's root folder.
_ALLOWED_RECORDS = [re.compile(p) for p in (
    r"archive_format", r"archive_version", r"byteorder", r"\.data/version", r"\.data/serialization_id",
    rf"models/{_NAME}\.json",
    rf"data/weights/{_NAME}_weights_config\.json", r"data/weights/weight_\d+",
    rf"data/constants/{_NAME}_constants_config\.json", r"data/constants/tensor_\d+",
    rf"data/sample_inputs/{_NAME}\.pt",
)]
_PAYLOAD_FILE = {"weights": re.compile(r"weight_\d+"), "constants": re.compile(r"tensor_\d+")}

_ATEN_TARGET = re.compile(r"torch\.ops\.aten\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+")
_ATEN_DENIED = {"from_file"}  # reads a file named in the graph
_SYM_TARGETS = {f"_operator.{op}" for op in (
    "add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "eq", "ne", "lt", "le", "gt", "ge",
    "and_", "or_", "not_")} | {f"torch.sym_{op}" for op in ("float", "int", "max", "min", "not", "ite", "sqrt")}

# expr_str is handed to sympy.sympify, i.e. evaluated: allow only numbers, operators, shape symbols
# (s0, u3, ...), the functions torch's deserializer and sympy's printer use, and Symbol('s0', positive=True).
_EXPR_TOKEN = re.compile(r"\s+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|'[a-z]+\d+'|[A-Za-z][A-Za-z0-9]*"
                         r"|\*\*|//|<=|>=|==|!=|[-+*/%()<>,=&|~]")
_SYMBOL = re.compile(r"[a-z]+\d+")
_EXPR_NAMES = {
    "Symbol", "Integer", "Float", "Rational", "True", "False", "oo", "zoo", "nan",
    "positive", "negative", "nonnegative", "integer", "real", "finite",
    "Max", "Min", "Abs", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "Mod", "floor", "ceiling",
    "sqrt", "Piecewise", "ITE",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "TruncToFloat", "TruncToInt",
    "RoundToInt", "RoundDecimal", "ToFloat", "Identity", "IsNonOverlappingAndDenseIndicator",
}
_MAX_EXPR = 1000
_NODE_METADATA = {"stack_trace", "nn_module_stack", "torch_fn", "source_fn_stack"}
_REFUSED_KEYS = {"as_custom_obj", "as_graph", "custom_obj"}  # objects unpickled from constants; subgraphs
# Line breaks other than \n (a \r ends a line of the Python source FX generates from node metadata) and
# other control characters: a genuine export never writes them.
_BAD_CHARS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


class NotPt2Archive(Exception):
    """The file is no .pt2 archive at all (the caller reports it as not a checkpoint)."""


class _Refused(Exception):
    pass


def check_pt2_archive(path: Path) -> None:
    """Raise an EdgekitError unless every record of the archive is on the allow-list above;
    NotPt2Archive when torch's zip reader cannot list it or it lacks ``archive_format`` = pt2."""
    import torch

    path = Path(path)
    try:
        reader = torch._C.PyTorchFileReader(str(path))
        records = list(reader.get_all_records())
        is_pt2 = "archive_format" in records and bytes(reader.get_record("archive_format")).strip() == b"pt2"
    except Exception as exc:  # noqa: BLE001 - torch's zip reader fails on bad bytes in several ways
        raise NotPt2Archive(exc.__class__.__name__) from None
    if not is_pt2:
        raise NotPt2Archive("no archive_format record saying pt2")
    try:
        _check(records, lambda name: bytes(reader.get_record(name)))
    except _Refused as why:
        raise EdgekitError(f"teacher file {path} holds parts torch.export.load would run as code ({why})",
                           "give the teacher as safetensors weights with --teacher-arch (or as .onnx); "
                           "edgekit loads only plain .pt2 exports") from None


def _check(records: list[str], read: Any) -> None:
    if len(set(records)) != len(records):
        raise _Refused("duplicate entries")
    for name in records:
        if not any(p.fullmatch(name) for p in _ALLOWED_RECORDS):
            raise _Refused(f"entry '{name[:80]}'")
    models = [n for n in records if n.startswith("models/")]
    if not models:
        raise _Refused("no models/*.json")
    for model in models:
        stem = model[len("models/"):-len(".json")]
        for kind in ("weights", "constants"):
            config = f"data/{kind}/{stem}_{kind}_config.json"
            if config not in records:
                raise _Refused(f"no {config}")
            _check_payload_config(_json(read, config), kind)
        _check_model(_json(read, model))


def _json(read: Any, name: str) -> Any:
    try:
        return json.loads(read(name).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Refused(f"{name} is not JSON") from None


def _check_payload_config(doc: Any, kind: str) -> None:
    entries = doc.get("config") if isinstance(doc, dict) else None
    if not isinstance(entries, dict):
        raise _Refused(f"malformed {kind} config")
    for fqn, meta in entries.items():
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False or meta.get("tensor_meta") is None:
            raise _Refused(f"{kind} '{str(fqn)[:60]}' is pickled")
        if not isinstance(meta.get("path_name"), str) or not _PAYLOAD_FILE[kind].fullmatch(meta["path_name"]):
            raise _Refused(f"{kind} '{str(fqn)[:60]}' is stored as '{str(meta.get('path_name'))[:40]}'")


def _check_model(doc: Any) -> None:
    if not isinstance(doc, dict):
        raise _Refused("model JSON is not an object")
    if doc.get("guards_code"):
        raise _Refused("guards code, which torch executes")
    _walk(doc, None)


def _walk(value: Any, key: str | None) -> None:
    if isinstance(value, dict):
        if {"target", "inputs", "outputs"} <= value.keys():
            _check_target(value["target"])
            metadata = value.get("metadata") or {}
            if not isinstance(metadata, dict) or not set(metadata) <= _NODE_METADATA:
                raise _Refused(f"node metadata {sorted(metadata)[:4] if isinstance(metadata, dict) else metadata!r}")
        for k, v in value.items():
            if k in _REFUSED_KEYS or (k == "custom_obj_values" and v):
                raise _Refused(f"'{k}' (custom objects or subgraphs)")
            _check_string(k, None)
            if k == "as_operator":
                _check_target(v)
            elif k == "expr_str":
                _check_expr(v)
            _walk(v, k)
    elif isinstance(value, list):
        for item in value:
            _walk(item, key)
    elif isinstance(value, str):
        _check_string(value, key)


def _check_string(text: str, key: str | None) -> None:
    if _BAD_CHARS.search(text) or ("\n" in text and key != "stack_trace"):
        raise _Refused("control characters in the model JSON")


def _check_target(target: Any) -> None:
    if not isinstance(target, str):
        raise _Refused("a node without a named operator")
    if target in _SYM_TARGETS:
        return
    if not _ATEN_TARGET.fullmatch(target) or target.split(".")[3] in _ATEN_DENIED:
        raise _Refused(f"operator '{target[:80]}'")


def _check_expr(expr: Any) -> None:
    if not isinstance(expr, str) or len(expr) > _MAX_EXPR:
        raise _Refused("a shape expression that is not a short string")
    pos = 0
    while pos < len(expr):
        match = _EXPR_TOKEN.match(expr, pos)
        if match is None:
            raise _Refused(f"shape expression {expr[:60]!r}")
        token = match.group()
        if token[0].isalpha() and token not in _EXPR_NAMES and not _SYMBOL.fullmatch(token):
            raise _Refused(f"name '{token[:40]}' in a shape expression")
        pos = match.end()
