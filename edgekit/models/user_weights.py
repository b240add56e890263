"""Load a teacher a user hands us: safetensors, a state_dict ``.pt``/``.pth``, an ExportedProgram ``.pt2``,
or an ONNX model (run in onnxruntime for its soft labels, models/onnx_teacher.py).

Only safe loaders are used: ``torch.load(weights_only=True)`` never runs code from the file, and a
.pt2 is inspected before torch.export.load reads any of it (models/pt2_archive_check.py): one with
pickled objects, code in its graph JSON or any entry a plain export does not write is refused unread.
"""

from __future__ import annotations

import logging
import pickle
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.errors import EdgekitError

if TYPE_CHECKING:  # torch is imported where a file is read: checking a path must not wait for it
    import torch

STATE_DICT_SUFFIXES = (".safetensors", ".pt", ".pth")
SUFFIXES = (*STATE_DICT_SUFFIXES, ".pt2", ".onnx")


def _not_checkpoint(path: Path, why: str, what: str = "teacher file") -> EdgekitError:
    return EdgekitError(f"{what} {path} is not a checkpoint ({why})",
                        "pass a .safetensors file, a state_dict saved with torch.save, a .pt2 ExportedProgram or an .onnx model")


def read_state_dict(path: Path, what: str = "teacher file") -> dict[str, torch.Tensor]:
    """A flat name -> tensor mapping from a safetensors or ``.pt``/``.pth`` file (``what`` names it in errors)."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise _not_checkpoint(path, f"safetensors could not read it: {exc}", what) from None
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 245": noise from bytes that are no pickle
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # The safe unpickler names a class it refused ("Unsupported global") when the file is a real pickle
        # of whole objects; any other complaint (an unknown opcode, a bad load key) means the bytes are
        # not a pickle at all.
        if "Unsupported global" in str(exc):
            raise _unsafe(path) from None
        raise _not_checkpoint(path, "it does not unpickle", what) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _not_checkpoint(path, str(exc).splitlines()[0][:120] if str(exc) else exc.__class__.__name__, what) from None
    except Exception as exc:  # noqa: BLE001 - the safe unpickler fails on arbitrary bytes in many ways (IndexError, KeyError, ...)
        raise _not_checkpoint(path, f"it does not unpickle ({exc.__class__.__name__})", what) from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise _not_checkpoint(path, "it holds no mapping of parameter names to tensors", what)
    return obj


def _unsafe(path: Path) -> EdgekitError:
    return EdgekitError(f"{path} needs unsafe unpickling", "convert it to safetensors (see README)")


class _UnsafePickle(Exception):
    pass


@contextmanager
def _only_safe_torch_load() -> Iterator[None]:
    """Within, every torch.load is weights_only: a loader that asks for full unpickling is stopped instead.

    torch.export.load reads a .pt2's sample inputs and constants with torch.load and, when the safe
    unpickler refuses them, falls back to weights_only=False, which would run code from the file."""
    import torch

    original = torch.load

    def guarded(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("weights_only") is False:
            raise _UnsafePickle
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    torch.load = guarded
    try:
        yield
    finally:
        torch.load = original


def load_exported(path: Path) -> torch.nn.Module:
    import torch

    from edgekit.models.pt2_archive_check import NotPt2Archive, check_pt2_archive

    if not zipfile.is_zipfile(path):  # a .pt2 is a zip archive; torch would log a traceback before failing
        raise _not_checkpoint(path, "it is not a .pt2 archive")
    try:
        check_pt2_archive(path)  # before torch deserializes anything: the archive holds only tensors and plain JSON
    except NotPt2Archive:
        raise _not_checkpoint(path, "it is not a .pt2 archive") from None
    export_log = logging.getLogger("torch.export")
    level = export_log.level
    export_log.setLevel(logging.CRITICAL)  # torch logs a warning with a traceback for archives it cannot read
    try:
        with _only_safe_torch_load():  # second layer: the sample inputs are still a (tensor-only) pickle
            return torch.export.load(str(path)).module()
    except _UnsafePickle:
        raise _unsafe(path) from None
    except Exception as exc:  # torch raises many kinds here; all mean "not a usable .pt2"
        if isinstance(exc.__context__, _UnsafePickle) or isinstance(exc.__cause__, _UnsafePickle):
            raise _unsafe(path) from None
        raise _not_checkpoint(path, f"torch.export.load failed: {exc.__class__.__name__}") from None
    finally:
        export_log.setLevel(level)


def check_teacher_file(path: Path) -> None:
    check_weights_file(path, "--teacher", SUFFIXES)


def check_weights_file(path: Path, flag: str, suffixes: tuple[str, ...]) -> None:
    """The file a flag names exists, is a file, and has a suffix we read (nothing is opened yet)."""
    path = Path(path)
    what = flag.removeprefix("--").replace("-", " ")
    if not path.exists():
        raise EdgekitError(f"{what} file {path} does not exist", f"check the path given to {flag}")
    if not path.is_file():
        raise EdgekitError(f"{what} path {path} is not a file", f"pass the weights file itself to {flag}")
    if path.suffix not in suffixes:
        raise EdgekitError(f"{what} file {path} has an unknown suffix '{path.suffix}'",
                           f"pass one of {', '.join(suffixes)}")


def fit_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, arch: str) -> None:
    """Load weights strictly; name the mismatch when they belong to another architecture."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        detail = f"{len(missing)} missing, {len(unexpected)} unexpected, {len(shapes)} wrong-shape tensors"
        if shapes and not missing and not unexpected:
            detail += f", e.g. {shapes[0]} {tuple(state[shapes[0]].shape)} vs {tuple(own[shapes[0]].shape)}"
        raise EdgekitError(f"teacher file {path} does not match --teacher-arch {arch} ({detail})",
                           "pass the architecture the weights were trained with, and as many classes as the data has")
    model.load_state_dict(state, strict=True)


def load_user_teacher(path: Path, arch: str, num_classes: int) -> tuple[torch.nn.Module, dict | None]:
    """The user's teacher, ready for inference, and the spec to rebuild it (None for a .pt2 or .onnx file)."""
    from edgekit.models.builders import build_model
    from edgekit.models.stage_models import set_eval

    check_teacher_file(path)
    if path.suffix == ".pt2":
        return set_eval(load_exported(path)), None
    if path.suffix == ".onnx":
        from edgekit.models.onnx_teacher import OnnxTeacher

        return OnnxTeacher(path), None
    spec = {"arch": arch, "num_classes": num_classes}
    model = build_model(spec)
    fit_state_dict(model, read_state_dict(path), path, arch)
    return model.eval(), spec


def check_teacher_outputs(model: torch.nn.Module, x: torch.Tensor, n_classes: int, source: str) -> None:
    import torch

    try:
        with torch.no_grad():
            logits = model(x[:2])
    except Exception as exc:  # a user's model can fail in many ways on our input
        raise EdgekitError(f"the teacher from {source} fails on {tuple(x.shape[1:])} inputs ({exc.__class__.__name__})",
                           "give a teacher that takes NCHW images of --size, or change --size") from None
    if logits.ndim != 2 or logits.shape[1] != n_classes:
        raise EdgekitError(f"the teacher from {source} gives outputs of shape {tuple(logits.shape)}, "
                           f"the data has {n_classes} classes", "give a teacher trained on these classes")
