"""Config files and flags: unknown keys with a suggestion, wrong types, precedence, ``epochs``."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgekit.config import Settings, build_settings, load_config_file
from edgekit.errors import EdgekitError

NO_FLAGS: dict = {}


def write(tmp_path: Path, text: str, name: str = "edgekit.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, 'teacher_arch = "resnet34"\nwidth = 1\nalpha = 0.5\nmean = [0, 0.5, 1]\nhflip = true\n'
                           'threads = 2\nteacher-epochs = 5\n')
    values = load_config_file(path)
    assert values == {"teacher_arch": "resnet34", "width": 1.0, "alpha": 0.5, "mean": [0.0, 0.5, 1.0],
                      "hflip": True, "threads": 2, "teacher_epochs": 5}
    assert isinstance(values["width"], float)  # an int where a float is expected is widened
    settings = build_settings(values, NO_FLAGS)
    assert settings.teacher_arch == "resnet34" and settings.teacher_epochs == 5
    assert settings.distill_epochs == Settings().distill_epochs


@pytest.mark.parametrize(("key", "nearest"), [("epoch", "epochs"), ("teacher_arc", "teacher_arch"),
                                               ("distil_epochs", "distill_epochs"), ("temprature", "temperature")])
def test_unknown_key_suggests_the_nearest(tmp_path: Path, key: str, nearest: str) -> None:
    path = write(tmp_path, f"{key} = 3\n")
    with pytest.raises(EdgekitError) as info:
        load_config_file(path)
    message = str(info.value)
    assert f"did you mean '{nearest}'?" in message
    assert key in message and str(path) in message
    assert info.value.exit_code == 2
    assert info.value.one_line().startswith("error: ") and " — " in info.value.one_line()


def test_unknown_key_far_from_all_lists_the_keys(tmp_path: Path) -> None:
    with pytest.raises(EdgekitError) as info:
        load_config_file(write(tmp_path, "zzzzqqqq = 1\n"))
    assert "epochs" in info.value.fix and "teacher_arch" in info.value.fix


@pytest.mark.parametrize(("text", "key"), [
    ('epochs = "three"\n', "epochs"),
    ("epochs = 2.5\n", "epochs"),
    ("epochs = true\n", "epochs"),
    ("width = \"wide\"\n", "width"),
    ("alpha = false\n", "alpha"),
    ("teacher_arch = 18\n", "teacher_arch"),
    ("hflip = 1\n", "hflip"),
    ("threads = 1.5\n", "threads"),
    ("data = 3\n", "data"),
    ("mean = [0.5, 0.5]\n", "mean"),
    ('mean = [0.5, "a", 0.5]\n', "mean"),
    ("std = \"0.5\"\n", "std"),
    ("latency_runs = \"5\"\n", "latency_runs"),
])
def test_wrong_type_is_a_user_error(tmp_path: Path, text: str, key: str) -> None:
    # caught when the file is read, or at the latest when the settings are built (before any stage)
    with pytest.raises(EdgekitError) as info:
        build_settings(load_config_file(write(tmp_path, text)), NO_FLAGS)
    assert key in info.value.what


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EdgekitError, match="not valid TOML"):
        load_config_file(write(tmp_path, "epochs = = 3\n"))
    with pytest.raises(EdgekitError, match="does not exist"):
        load_config_file(tmp_path / "nope.toml")


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    values = load_config_file(write(tmp_path, 'width = 0.5\nsize = 48\nteacher_arch = "resnet34"\nseed = 7\n'))
    settings = build_settings(values, {"width": 1.0, "size": None, "teacher_arch": "resnet18", "seed": None})
    assert settings.width == 1.0  # flag given: it wins
    assert settings.teacher_arch == "resnet18"
    assert settings.size == 48  # flag not given (None): the file's value stays
    assert settings.seed == 7


def test_epochs_flag_wins_over_epochs_in_file(tmp_path: Path) -> None:
    values = load_config_file(write(tmp_path, "epochs = 5\n"))
    settings = build_settings(values, {"epochs": 2})
    assert (settings.teacher_epochs, settings.distill_epochs, settings.qat_epochs) == (2, 2, 2)


@pytest.mark.parametrize("source", ["file", "flag"])
def test_epochs_sets_all_three(tmp_path: Path, source: str) -> None:
    if source == "file":
        settings = build_settings(load_config_file(write(tmp_path, "epochs = 3\n")), NO_FLAGS)
    else:
        settings = build_settings({}, {"epochs": 3})
    assert (settings.teacher_epochs, settings.distill_epochs, settings.qat_epochs) == (3, 3, 3)
    assert not hasattr(settings, "epochs")


def test_defaults_when_nothing_is_given() -> None:
    assert build_settings({}, {"width": None, "epochs": None}) == Settings()


@pytest.mark.parametrize(("flags", "words"), [
    ({"epochs": 0}, "at least 1"),
    ({"width": -1.0}, "width"),
    ({"size": 8}, "size"),
    ({"alpha": 1.5}, "alpha"),
    ({"temperature": 0.0}, "temperature"),
    ({"threads": 0}, "threads"),
    ({"width": float("nan")}, "width"),
    ({"temperature": float("inf")}, "temperature"),
    ({"alpha": float("nan")}, "alpha"),
    ({"seed": 10**17}, "seed"),
    ({"seed": -1}, "seed"),
    ({"std": [0.5, float("nan"), 0.5]}, "std"),
    ({"mean": [0.0, float("inf"), 0.0]}, "mean"),
    ({"quant_method": "fp16"}, "quant-method"),
    ({"student": "resnet18"}, "student"),
])
def test_range_checks(flags: dict, words: str) -> None:
    with pytest.raises(EdgekitError) as info:
        build_settings({}, flags)
    assert words in info.value.what


def test_epochs_flag_beats_a_specific_key_in_the_file() -> None:
    from edgekit.config import build_settings

    s = build_settings({"distill_epochs": 20, "teacher_epochs": 9}, {"epochs": 2})
    assert (s.teacher_epochs, s.distill_epochs, s.qat_epochs) == (2, 2, 2)
    s = build_settings({"epochs": 5, "distill_epochs": 20}, {})
    assert (s.teacher_epochs, s.distill_epochs, s.qat_epochs) == (5, 20, 5)


def test_alpha_defaults_by_method_unless_given() -> None:
    assert build_settings({}, {}).alpha == 0.7
    assert build_settings({}, {"method": "dkd"}).alpha == 0.9  # DKD learns better with less cross-entropy
    assert build_settings({"method": "dkd"}, {}).alpha == 0.9
    assert build_settings({"method": "dkd"}, {"alpha": 0.5}).alpha == 0.5  # a given alpha always wins
    assert build_settings({"alpha": 0.6}, {"method": "dkd"}).alpha == 0.6
    assert build_settings({}, {"method": "kd+dkd"}).alpha == 0.7
    assert build_settings({}, {"alpha": 0.0, "method": "dkd"}).alpha == 0.0  # alpha 0: plain training, kept
    assert Settings(method="dkd").alpha == 0.9 and Settings().alpha == 0.7 and Settings(method="dkd", alpha=0.3).alpha == 0.3
    assert build_settings({}, {"task": "detect"}).alpha == 0.5  # the detection defaults' own
