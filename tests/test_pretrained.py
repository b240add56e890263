"""``--pretrained`` (torchvision's weights API, read from the torch hub cache offline) and ``--student-weights``.

A file named as torchvision names it, holding random weights of the right shapes, stands in for the published one in
a temporary ``TORCH_HOME``: the tests check it is loaded (every tensor but the replaced head), that the runs complete
offline, and that a missing file stops the run before training with the URL and the path to put it at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import MobileNet_V2_Weights, MobileNet_V3_Small_Weights, mobilenet_v2, mobilenet_v3_small

from conftest import run_cli
from edgekit.errors import EdgekitError
from edgekit.models.pretrained import OFFLINE, init_from_file, init_pretrained, published_weights

ARCH = "mobilenet_v3_small"  # the smallest torchvision network with published weights (10 MB)


def _fake_hub(home: Path) -> Path:
    """torchvision's DEFAULT mobilenet_v3_small file, random weights of the published shapes (1000 classes)."""
    torch.manual_seed(0)
    path = home / "hub" / "checkpoints" / Path(MobileNet_V3_Small_Weights.DEFAULT.url).name
    path.parent.mkdir(parents=True)
    torch.save(mobilenet_v3_small(num_classes=1000).state_dict(), path)
    return path


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch_home"
    file = _fake_hub(home)
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv(OFFLINE, "1")
    return file


def test_published_weights_are_loaded_and_the_head_replaced(hub: Path) -> None:
    model = mobilenet_v3_small(num_classes=10)
    head_before = model.classifier[3].weight.clone()
    line = init_pretrained(model, ARCH, "DEFAULT", 1.0)
    assert "classifier head replaced (1000" in line and hub.name in line
    published = torch.load(hub, weights_only=True)
    own = model.state_dict()
    for key, value in own.items():
        if key.startswith("classifier.3."):
            continue
        assert torch.equal(value, published[key]), key
    assert own["classifier.3.weight"].shape == (10, 1024) and torch.equal(own["classifier.3.weight"], head_before)


def test_a_width_without_published_weights_says_so(hub: Path) -> None:
    with pytest.warns(UserWarning, match="width 1 only"):
        line = init_pretrained(mobilenet_v3_small(width_mult=0.75, num_classes=10), ARCH, "DEFAULT", 0.75)
    assert "random" in line


def test_a_missing_file_names_the_url_and_the_cache_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv(OFFLINE, "1")
    weights = published_weights(ARCH, "DEFAULT")
    with pytest.raises(EdgekitError) as err:
        init_pretrained(mobilenet_v3_small(num_classes=10), ARCH, "DEFAULT", 1.0)
    line = err.value.one_line()
    assert weights.url in line and str(tmp_path / "empty" / "hub" / "checkpoints") in line


def test_student_weights_load_and_name_the_first_mismatch(tmp_path: Path) -> None:
    source = mobilenet_v2(width_mult=0.35, num_classes=10)
    save_file(source.state_dict(), str(tmp_path / "s.safetensors"))
    model = mobilenet_v2(width_mult=0.35, num_classes=10)
    assert init_from_file(model, tmp_path / "s.safetensors", "mobilenet_v2 x0.35") == "mobilenet_v2 x0.35 from s.safetensors"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), source.state_dict().values()))
    with pytest.raises(EdgekitError, match="features.0.0.weight"):
        init_from_file(mobilenet_v2(width_mult=1.0, num_classes=10), tmp_path / "s.safetensors", "mobilenet_v2 x1")


def test_a_pretrained_teacher_and_student_train_offline(tmp_path: Path) -> None:
    """Teacher and student start from the (fake) published file: the runs complete with no network and the records
    say where the weights came from; a x0.75 student, which has no published weights, gets a warning."""
    _fake_hub(tmp_path / "torch_home")
    env = {"TORCH_HOME": str(tmp_path / "torch_home"), OFFLINE: "1"}
    common = ["--pretrained", "DEFAULT", "--teacher-arch", ARCH, "--epochs", "1", "--out", str(tmp_path / "run")]
    teacher = run_cli(["teacher", *common], cwd=tmp_path, env_extra=env)
    assert teacher.returncode == 0, teacher.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "teacher" / "stage.json").read_text(encoding="utf-8"))["result"]
    assert record["source"] == f"{ARCH} fine-tuned from torchvision DEFAULT weights"
    assert "classifier head replaced (1000 -> the data's classes)" in record["initial_weights"]
    distill = run_cli(["distill", *common, "--student", ARCH, "--width", "1.0"], cwd=tmp_path, env_extra=env)
    assert distill.returncode == 0, distill.stderr[-3000:]
    result = json.loads((tmp_path / "run" / "distill" / "stage.json").read_text(encoding="utf-8"))["result"]
    assert result["initial_weights"].startswith(f"{ARCH} from torchvision IMAGENET1K_V1")
    narrow = run_cli(["distill", *common, "--student", ARCH, "--width", "0.75"], cwd=tmp_path, env_extra=env)
    assert narrow.returncode == 0, narrow.stderr[-3000:]
    assert "warning: --pretrained: torchvision publishes mobilenet_v3_small weights at width 1 only" in narrow.stderr


def test_a_missing_published_file_stops_before_training(tmp_path: Path) -> None:
    env = {"TORCH_HOME": str(tmp_path / "empty"), OFFLINE: "1"}
    result = run_cli(["teacher", "--pretrained", "DEFAULT", "--teacher-arch", ARCH, "--out", str(tmp_path / "run")],
                     cwd=tmp_path, env_extra=env)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert MobileNet_V3_Small_Weights.DEFAULT.url in lines[0] and str(tmp_path / "empty") in lines[0]
    assert not (tmp_path / "run").exists()


def _fake_mobilenet_v2_hub(home: Path) -> Path:
    """torchvision's DEFAULT mobilenet_v2 file (random weights of the published shapes) for TinyDetector backbones."""
    torch.manual_seed(1)
    path = home / "hub" / "checkpoints" / Path(MobileNet_V2_Weights.DEFAULT.url).name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(mobilenet_v2(num_classes=1000).state_dict(), path)
    return path


def test_tiny_detector_backbone_from_mobilenet_v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """features[0:7], [7:14], [14:18] land in stage8, stage16, stage32; a narrower detector says it starts random."""
    from edgekit.detect.pretrained_backbone import init_backbone
    from edgekit.detect.tiny_detector import DetectorSpec, TinyDetector

    file = _fake_mobilenet_v2_hub(tmp_path / "torch_home")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv(OFFLINE, "1")
    model = TinyDetector(DetectorSpec(3, 1.0, 96, 3))
    head_before = model.state_dict()["cls.0.weight"].clone()
    line = init_backbone(model, "DEFAULT")
    assert line.startswith("backbone from torchvision mobilenet_v2 IMAGENET1K_V2") and file.name in line
    published, own = torch.load(file, weights_only=True), model.state_dict()
    for key, value in published.items():
        index = int(key.split(".")[1]) if key.startswith("features.") else 99
        if index >= 18:
            continue
        stage = "stage8" if index < 7 else "stage16" if index < 14 else "stage32"
        mine = key.replace("features", stage, 1)  # the stages are slices of torchvision's Sequential: same indices
        assert torch.equal(own[mine], value), mine
    assert torch.equal(own["cls.0.weight"], head_before)  # heads keep their fresh initialisation
    assert "random initialisation" in init_backbone(TinyDetector(DetectorSpec(3, 0.35)), "DEFAULT")


def test_a_pretrained_detection_teacher_trains_offline(tmp_path: Path) -> None:
    _fake_mobilenet_v2_hub(tmp_path / "torch_home")
    env = {"TORCH_HOME": str(tmp_path / "torch_home"), OFFLINE: "1"}
    result = run_cli(["teacher", "--task", "detect", "--pretrained", "DEFAULT", "--epochs", "1",
                      "--out", str(tmp_path / "run")], cwd=tmp_path, env_extra=env)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "run" / "teacher" / "stage.json").read_text(encoding="utf-8"))["result"]
    assert record["source"] == "trained from torchvision DEFAULT backbone weights"
    assert record["initial_weights"].startswith("backbone from torchvision mobilenet_v2 IMAGENET1K_V2")
