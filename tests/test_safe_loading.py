"""No file a user hands edgekit runs code or reaches outside its place: hostile .pt2 archives, ONNX external
data, YAML tags, COCO file names and decompression bombs are refused with one line, exit 2, --out untouched.

Each hostile .pt2 test first shows, with torch's own loader and no edgekit guard, that the payload really
runs (or really reaches torch's unpickler), so a refusal cannot pass by accident.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from edgekit.errors import EdgekitError

EDGEKIT = str(Path(sys.executable).parent / "edgekit")
TINY = ["--size", "16", "--teacher-arch", "resnet18"]


class _Touch:
    """Unpickling this creates ``marker``: the proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


def _genuine(path: Path, dynamic: bool = False) -> Path:
    model = torch.nn.Linear(2, 2)
    shapes = ({0: torch.export.Dim("batch", min=2, max=64)},) if dynamic else None
    torch.export.save(torch.export.export(model, (torch.zeros(4, 2),), dynamic_shapes=shapes), str(path))
    return path


def _rewrite(src: Path, dst: Path, edit: Callable[[dict[str, bytes]], None]) -> Path:
    """Copy a .pt2 with ``edit`` applied to its records (names relative to the archive's root folder)."""
    with zipfile.ZipFile(src) as z:
        root = z.namelist()[0].split("/")[0]
        records = {n[len(root) + 1:]: z.read(n) for n in z.namelist()}
    edit(records)
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in records.items():
            z.writestr(f"{root}/{name}", data)
    return dst


def _add_constant(records: dict[str, bytes], path_name: str, payload: bytes) -> None:
    """A constants entry of the kind torch.export.save writes for an opaque or custom (torchbind) object."""
    config = json.loads(records["data/constants/model_constants_config.json"])
    config["config"]["obj"] = {"path_name": path_name, "is_param": False, "use_pickle": True, "tensor_meta": None}
    records["data/constants/model_constants_config.json"] = json.dumps(config).encode()
    records[f"data/constants/{path_name}"] = payload


def _edit_model(records: dict[str, bytes], edit: Callable[[dict], None]) -> None:
    doc = json.loads(records["models/model.json"])
    edit(doc)
    records["models/model.json"] = json.dumps(doc).encode()


def _torch_load_unguarded(path: Path) -> None:
    try:
        torch.export.load(str(path)).module()(torch.zeros(4, 2))
    except Exception:  # noqa: BLE001 - only the side effect matters
        pass


def _teacher_cli(path: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([EDGEKIT, "teacher", "--teacher", str(path), "--out", str(out), *TINY],
                          capture_output=True, text=True, timeout=300)


def _assert_refused(result: subprocess.CompletedProcess, out: Path, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and " — " in lines[0], result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists(), "--out was written"


def test_pt2_with_opaque_object_pickle_is_refused_before_it_runs(tmp_path: Path) -> None:
    control = tmp_path / "control-ran"
    genuine = _genuine(tmp_path / "good.pt2")
    evil_control = _rewrite(genuine, tmp_path / "control.pt2",
                            lambda r: _add_constant(r, "opaque_obj_0", pickle.dumps(_Touch(control))))
    _torch_load_unguarded(evil_control)
    assert control.exists(), "torch.export.load no longer unpickles opaque_obj_*: this test proves nothing"

    marker = tmp_path / "pwned"
    evil = _rewrite(genuine, tmp_path / "evil.pt2", lambda r: _add_constant(r, "opaque_obj_0", pickle.dumps(_Touch(marker))))
    out = tmp_path / "run"
    _assert_refused(_teacher_cli(evil, out), out, "evil.pt2", "opaque_obj_0", "safetensors")
    assert not marker.exists()


def test_pt2_with_custom_object_is_refused_before_torch_unpickles_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evil = _rewrite(_genuine(tmp_path / "good.pt2"), tmp_path / "evil.pt2",
                    lambda r: _add_constant(r, "custom_obj_0", b"PK not really a torchscript pickle"))
    seen: list[bytes] = []
    monkeypatch.setattr(torch._C, "_pickle_load_obj", lambda data: seen.append(data))
    _torch_load_unguarded(evil)  # the control: torch hands the entry's bytes to its TorchScript unpickler
    assert seen == [b"PK not really a torchscript pickle"], "torch no longer reads custom_obj_*: this test proves nothing"
    monkeypatch.undo()

    out = tmp_path / "run"
    _assert_refused(_teacher_cli(evil, out), out, "evil.pt2", "custom_obj_0", "safetensors")


def _sympify_payload(marker: Path) -> Callable[[dict[str, bytes]], None]:
    def first_expr(value: object) -> dict | None:
        if isinstance(value, dict):
            if "expr_str" in value:
                return value
            value = list(value.values())
        if isinstance(value, list):
            return next((found for v in value if (found := first_expr(v)) is not None), None)
        return None

    def edit(doc: dict) -> None:
        expr = first_expr(doc)
        assert expr is not None, "a dynamic-shape export without a shape expression"
        expr["expr_str"] = f"__import__('pathlib').Path({str(marker)!r}).touch() or {expr['expr_str']}"

    return lambda records: _edit_model(records, edit)


def _guards_payload(marker: Path) -> Callable[[dict[str, bytes]], None]:
    def edit(doc: dict) -> None:
        doc["guards_code"] = [f"__import__('pathlib').Path({str(marker)!r}).touch() or True"]

    return lambda records: _edit_model(records, edit)


def _pickled_weight(marker: Path) -> Callable[[dict[str, bytes]], None]:
    def edit(records: dict[str, bytes]) -> None:
        config = json.loads(records["data/weights/model_weights_config.json"])
        meta = config["config"]["weight"]
        meta["use_pickle"] = True
        records["data/weights/" + meta["path_name"]] = pickle.dumps(_Touch(marker))
        records["data/weights/model_weights_config.json"] = json.dumps(config).encode()

    return edit


def _os_target(_marker: Path) -> Callable[[dict[str, bytes]], None]:
    def edit(doc: dict) -> None:
        doc["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"

    return lambda records: _edit_model(records, edit)


def _aoti_library(_marker: Path) -> Callable[[dict[str, bytes]], None]:
    def edit(records: dict[str, bytes]) -> None:
        records["data/aotinductor/model/model.so"] = b"\x7fELF"

    return edit


# (payload, dynamic-shape export, whether torch runs the marker payload unguarded, words in the refusal)
_JSON_AND_ENTRY_CASES = {
    "sympify-expr": (_sympify_payload, True, True, "shape expression"),
    "guards-code": (_guards_payload, False, True, "guards code"),
    "pickled-weight": (_pickled_weight, False, True, "pickled"),
    "os-target": (_os_target, False, False, "torch.os.system"),
    "aoti-library": (_aoti_library, False, False, "aotinductor"),
}


@pytest.mark.parametrize("case", list(_JSON_AND_ENTRY_CASES))
def test_pt2_code_outside_pickles_is_refused_unread(tmp_path: Path, case: str) -> None:
    """Code a .pt2 carries beyond opaque objects: sympify'd shape expressions and exec'd guards in the graph
    JSON, weights marked use_pickle, arbitrary torch.* callables as node targets, compiled libraries."""
    from edgekit.models.user_weights import load_exported

    payload, dynamic, runs, words = _JSON_AND_ENTRY_CASES[case]
    genuine = _genuine(tmp_path / "good.pt2", dynamic=dynamic)
    if runs:
        control = tmp_path / "control-ran"
        _torch_load_unguarded(_rewrite(genuine, tmp_path / "control.pt2", payload(control)))
        assert control.exists(), f"{case}: torch no longer runs this payload; the test proves nothing"
    marker = tmp_path / "pwned"
    evil = _rewrite(genuine, tmp_path / "evil.pt2", payload(marker))
    with pytest.raises(EdgekitError, match=words) as caught:
        load_exported(evil)
    assert "safetensors" in caught.value.fix
    assert not marker.exists()


def test_genuine_pt2_with_dynamic_batch_passes_the_check(tmp_path: Path) -> None:
    from edgekit.models.user_weights import load_exported

    model = load_exported(_genuine(tmp_path / "good.pt2", dynamic=True))
    assert model(torch.zeros(5, 2)).shape == (5, 2)


# --- the other loaders -------------------------------------------------------------------------------

def _cli(args: list[str], work: Path) -> subprocess.CompletedProcess:
    from conftest import run_cli

    result = run_cli(args, cwd=work, timeout=180)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout, result.stderr)


def _onnx_with_external(path: Path, location: str) -> Path:
    """y = x + w, with w's four floats stored in the external file ``location``."""
    import onnx
    from onnx import TensorProto, helper

    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    for key, value in {"location": location, "offset": "0", "length": "16"}.items():
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "t",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [w])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return path


@pytest.mark.parametrize("location", ["../../secret.bin", "ABSOLUTE", "link.bin", "missing.bin"])
def test_onnx_external_data_outside_its_folder_is_refused_before_onnxruntime(
        tmp_path: Path, location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime 1.2x refuses these itself; edgekit's own check must not depend on that, so onnxruntime
    is replaced by a tripwire: the refusal has to come first, and name the file's location."""
    import edgekit.models.onnx_teacher as onnx_teacher

    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 16)
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    if location == "ABSOLUTE":
        location = str(secret)
    if location == "link.bin":
        (folder / "link.bin").symlink_to(secret)
    model = _onnx_with_external(folder / "teacher.onnx", location)
    monkeypatch.setattr(onnx_teacher, "open_session", lambda *_a, **_k: pytest.fail("onnxruntime opened the model"))
    with pytest.raises(EdgekitError, match="does not exist" if location == "missing.bin" else "outside the model's folder"):
        onnx_teacher.OnnxTeacher(model)


def test_onnx_external_data_inside_its_folder_still_loads(tmp_path: Path) -> None:
    import numpy as np

    from edgekit.models.onnx_teacher import OnnxTeacher

    (tmp_path / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    teacher = OnnxTeacher(_onnx_with_external(tmp_path / "teacher.onnx", "w.bin"))
    assert teacher(torch.zeros(4)).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_an_onnx_teacher_with_external_data_is_copied_as_one_file(tmp_path: Path) -> None:
    """The teacher stage keeps its own copy: with the weights inside, it runs where the .data file is absent."""
    import numpy as np

    from edgekit.models.onnx_teacher import OnnxTeacher, copy_onnx_model

    (tmp_path / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    source = _onnx_with_external(tmp_path / "teacher.onnx", "w.bin")
    (tmp_path / "stage").mkdir()
    copy_onnx_model(source, tmp_path / "stage" / "model.onnx")
    (tmp_path / "w.bin").unlink()
    assert OnnxTeacher(tmp_path / "stage" / "model.onnx")(torch.zeros(4)).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_onnx_teacher_escaping_its_folder_fails_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    model = _onnx_with_external(tmp_path / "a" / "b" / "teacher.onnx", "../../secret.bin")
    out = tmp_path / "run"
    _assert_refused(_teacher_cli(model, out), out, "teacher.onnx", "../../secret.bin", "outside the model's folder")


def test_yaml_python_tags_are_refused_and_never_run(tmp_path: Path) -> None:
    from conftest import write_png

    marker = tmp_path / "pwned"
    for split in ("train", "val"):
        write_png(tmp_path / "d" / "images" / split / "x.png", 0, size=32)
    data = tmp_path / "d" / "data.yaml"
    data.write_text(f"train: images/train\nval: images/val\nnames: [a, b]\n"
                    f"x: !!python/object/apply:os.system ['touch {marker}']\n", encoding="utf-8")
    import yaml

    with pytest.raises(yaml.YAMLError):  # the control: the tag is there and only a safe loader refuses it
        yaml.safe_load(data.read_text(encoding="utf-8"))
    out = tmp_path / "run"
    _assert_refused(_cli(["compress", "--task", "detect", "--data", str(data), "--out", str(out)], tmp_path),
                    out, "data.yaml", "not valid YAML")
    assert not marker.exists()


def test_every_yaml_read_in_edgekit_is_safe_load() -> None:
    import re

    root = Path(__file__).resolve().parents[1] / "edgekit"
    calls = [(p.name, m) for p in root.rglob("*.py") for m in re.findall(r"yaml\.\w*load\w*", p.read_text(encoding="utf-8"))]
    assert calls and {m for _, m in calls} == {"yaml.safe_load"}, calls


def _coco(tmp_path: Path, doc: object | str) -> list[str]:
    from conftest import write_png

    write_png(tmp_path / "imgs" / "a.png", 0, size=16)
    (tmp_path / "outside.png").write_bytes((tmp_path / "imgs" / "a.png").read_bytes())
    path = tmp_path / "instances.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return ["--task", "detect", "--data", str(path), "--images", str(tmp_path / "imgs")]


_CATS = [{"id": 1, "name": "a"}]
_COCO_CASES = {
    "file-name-escapes": ({"images": [{"id": 1, "file_name": "../outside.png"}], "annotations": [], "categories": _CATS},
                          "outside --images"),
    "file-name-absolute": ({"images": [{"id": 1, "file_name": "ABSOLUTE"}], "annotations": [], "categories": _CATS},
                           "outside --images"),
    "deep-nesting": ("[" * 100_000 + "]" * 100_000, "RecursionError"),
    "images-not-a-list": ({"images": {"id": 1}, "annotations": [], "categories": _CATS}, "'images' is not a list"),
    "file-name-a-number": ({"images": [{"id": 1, "file_name": 7}], "categories": _CATS}, "file_name"),
    "bbox-of-strings": ({"images": [{"id": 1, "file_name": "a.png"}], "categories": _CATS,
                         "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": ["0", 0, 1, 1]}]},
                        "bbox of four numbers"),
    "top-level-list": ([1, 2], "not a JSON object"),
}


@pytest.mark.parametrize("case", list(_COCO_CASES))
def test_hostile_coco_json_is_one_user_error(tmp_path: Path, case: str) -> None:
    from edgekit.detect.coco_data import load_coco

    doc, words = _COCO_CASES[case]
    if case == "file-name-absolute":
        doc["images"][0]["file_name"] = str(tmp_path / "outside.png")
    flags = _coco(tmp_path, doc)
    with pytest.raises(EdgekitError, match=words):
        load_coco(Path(flags[3]), Path(flags[5]), size=16)


def test_coco_file_name_escaping_fails_through_the_cli(tmp_path: Path) -> None:
    flags = _coco(tmp_path, _COCO_CASES["file-name-escapes"][0])
    out = tmp_path / "run"
    _assert_refused(_cli(["compress", *flags, "--out", str(out)], tmp_path), out, "../outside.png", "outside --images")


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height 1-bit pixels and holds none: a few dozen bytes, never decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [10_000, 20_000])  # above the limit where PIL only warns; above 2x, where it raises
def test_decompression_bomb_is_refused_from_its_header(tmp_path: Path, side: int) -> None:
    from edgekit.data.image_limits import MAX_PIXELS, ImageTooLarge, open_image

    assert side * side > MAX_PIXELS
    bomb = _png_header(tmp_path / "bomb.png", side, side)
    with pytest.raises(ImageTooLarge, match="bomb.png"):
        with open_image(bomb):
            pass


def test_decompression_bomb_in_the_data_names_the_file_or_is_skipped(tmp_path: Path) -> None:
    from conftest import make_image_folder

    from edgekit.data.image_folder import load_image_folder
    from edgekit.data.preprocess import PreprocessSpec

    root = make_image_folder(tmp_path / "data", {"train": ["cat", "dog"], "test": ["cat", "dog"]})
    _png_header(root / "train" / "dog" / "bomb.png", 20_000, 20_000)
    out = tmp_path / "run"
    _assert_refused(_cli(["compress", "--data", str(root), "--out", str(out)], tmp_path), out,
                    "bomb.png", "pixels", "--skip-bad-images")
    data = load_image_folder(root, PreprocessSpec(size=(8, 8), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)), skip_bad_images=True)
    assert [Path(p).name for p in data.skipped] == ["bomb.png"]


def test_decompression_bomb_given_to_predict_is_one_user_error(tmp_path: Path) -> None:
    from edgekit.inference.predict import read_image

    with pytest.raises(EdgekitError, match="bomb.png declares .* pixels"):
        read_image(_png_header(tmp_path / "bomb.png", 20_000, 20_000))
