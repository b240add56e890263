"""The options every edgekit command shares, with their help texts (typer reads them from the annotations)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Data = Annotated[Optional[Path], typer.Option(help="Classification: ImageFolder directory (train/<class>/*, test/<class>/*, optional val/); default built-in digits. Detection: a YOLO data.yaml or COCO instances.json; default built-in scenes.")]
Task = Annotated[Optional[str], typer.Option(help="classify (default) or detect.")]
Images = Annotated[Optional[Path], typer.Option(help="Detection with a COCO instances.json: the image folder.")]
TeacherFile = Annotated[Optional[list[Path]], typer.Option("--teacher", help="Teacher weights: .safetensors, state_dict .pt/.pth, ExportedProgram .pt2, or .onnx; repeat for --method ensemble. Default: train one.")]
TeacherArch = Annotated[Optional[str], typer.Option(help="torchvision architecture of the teacher (default resnet18).")]
Student = Annotated[Optional[str], typer.Option(help="mobilenet_v2 (default), mobilenet_v3_small, mobilenet_v3_large, or auto: the most capable candidate whose INT8 estimate fits the target's budgets (the default under a latency_ms budget).")]
Width = Annotated[Optional[float], typer.Option(help="Student width multiplier (default 0.35).")]
LatencyMargin = Annotated[Optional[float], typer.Option("--latency-margin", help="--student auto: how much of the estimate's error band the choice charges against latency_ms (1: all of it, default; 0: none).")]
Pretrained = Annotated[Optional[str], typer.Option("--pretrained", help="Start the teacher edgekit trains and the student from torchvision's published weights: DEFAULT or a weights name such as IMAGENET1K_V1 (read from the torch hub cache; downloaded there when missing).")]
StudentWeights = Annotated[Optional[Path], typer.Option("--student-weights", help="Start the student from your weights: .safetensors or a weights-only state dict (.pt/.pth).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the plan (the student chosen and its candidates, the teacher, the stages that would run) and exit without training.")]
Size = Annotated[Optional[int], typer.Option(help="Square input size in pixels (default 32).")]
Temperature = Annotated[Optional[float], typer.Option(help="Distillation temperature T (default 4).")]
Alpha = Annotated[Optional[float], typer.Option(help="Weight of the teacher terms (the KD term); 1-alpha weighs cross-entropy (default 0.7; 0.9 for --method dkd).")]
Epochs = Annotated[Optional[int], typer.Option(help="Epochs for every training stage (teacher, distill, QAT).")]
QuantMethod = Annotated[Optional[str], typer.Option("--quant-method", help="qat (teacher-guided, default) or ptq.")]
Method = Annotated[Optional[str], typer.Option("--method", help="Distillation: kd (default), dkd, fitnet, at, rkd, ensemble, progressive, self; combine with + (e.g. kd+at, ensemble+dkd, at:0.5+kd).")]
MaxDrop = Annotated[Optional[float], typer.Option("--max-drop", help="INT8 files may score at most this many points below the FP32 student: the most sensitive layers are kept float until they do (at most a quarter of them).")]
Io = Annotated[Optional[str], typer.Option("--io", help="INT8 .tflite input and output: uint8 (the raw RGB pixels of the resized image in, uint8 scores out, as MediaPipe and apps feed them), int8 (TFLite Micro) or auto (default: uint8 when the recipe has one mean and one std for all channels, int8 otherwise).")]
Nproc = Annotated[Optional[int], typer.Option("--nproc", help="Train on N processes of this machine (DistributedDataParallel over gloo); for several machines run the command under torchrun instead.")]
TrainDevice = Annotated[Optional[str], typer.Option("--train-device", help="Where the teacher and distill stages train: auto (a GPU per process when there are enough, else the CPU; default), cpu, cuda.")]
SoftLabels = Annotated[Optional[str], typer.Option("--soft-label-cache", help="Teacher outputs cached on disk: auto (in --out, default), off, or a folder shared by runs.")]
Target = Annotated[Optional[str], typer.Option(help="Target profile name (see `edgekit targets`) or a .toml file (default rpi4).")]
Threads = Annotated[Optional[int], typer.Option(help="Threads of the target estimate and of host latency (default: the target's; on the host at most its cores less one).")]
Budget = Annotated[Optional[list[str]], typer.Option("--budget", help="A limit key=value (latency_ms, size_mb, accuracy, agreement); repeatable. Missed: exit 1.")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="Also measure on a board: ssh://user@host[:port], or local.")]
Seed = Annotated[Optional[int], typer.Option(help="Random seed for training (default 0).")]
Out = Annotated[Path, typer.Option(help="Run directory; each stage writes a folder inside it.")]
Config = Annotated[Optional[Path], typer.Option(help="TOML file with the same keys as the flags.")]
Force = Annotated[bool, typer.Option(help="Rerun the stages from scratch even when they are up to date (checkpoints are dropped).")]
ForceStage = Annotated[Optional[str], typer.Option("--force-stage", help="Rerun this stage from scratch and every stage after it (teacher, distill, quantize, export, benchmark).")]
Debug = Annotated[bool, typer.Option(help="Show tracebacks for errors.")]
SkipBad = Annotated[bool, typer.Option("--skip-bad-images", help="Leave out image files that cannot be decoded (counted in the report) instead of stopping.")]
