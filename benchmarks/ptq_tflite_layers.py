"""Where an INT8 TFLite file departs from the PyTorch PT2E graph it was converted from, layer by layer.

Runs the converted PT2E graph (``fold_quantize=False``, the PyTorch INT8 reference) on test images and
records every ``quantize_per_tensor`` output (int8 values with their scale and zero point); runs the
INT8 TFLite file of the same graph with ``experimental_preserve_all_tensors`` and pairs each TFLite int8
tensor with the PyTorch quantize node of the same scale, zero point and element count. For each pair it
reports the share of elements that differ by more than one integer step. The first layer with a large
share is where the conversion changes the computation.

    python benchmarks/ptq_tflite_layers.py RUN_DIR [--images 64] [--observer histogram|minmax]

RUN_DIR holds a finished distill stage (built-in digits unless --data is given). The student is
prepared for PTQ here and calibrated as the quantize stage does (``calibration_batches`` x ``batch_size``
training images, seeded random sample), with the XNNPACK quantizer's own activation observer
(histogram) or a MinMax observer instead, to tell which observer triggers a difference.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekit.config import build_settings
from edgekit.runtime.quiet import quiet_fds
from edgekit.export.tflite_format import export_tflite
from edgekit.models.stage_models import load_student
from edgekit.pipeline.runner import stage_dir
from edgekit.quantize import pt2e
from edgekit.quantize.calibration import calibrate
from edgekit.stages.context import StageContext

ROOT = Path(__file__).resolve().parents[1]


def torch_quantize_outputs(graph: torch.fx.GraphModule, x: torch.Tensor) -> list[dict[str, Any]]:
    """Every quantize_per_tensor node's int values in graph order, with its qparams."""
    found: list[dict[str, Any]] = []

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n: torch.fx.Node) -> Any:
            value = super().run_node(n)
            if n.op == "call_function" and "quantize_per_tensor" in str(n.target) and "dequantize" not in str(n.target):
                scale, zp = (float(a) if not isinstance(a, torch.Tensor) else float(a.item()) for a in n.args[1:3])
                found.append({"node": n.name, "scale": scale, "zero_point": int(zp), "value": value.detach().numpy()})
            return value

    with torch.no_grad():
        Recorder(graph).run(x)
    return found


def tflite_int8_tensors(path: Path, x_nhwc: np.ndarray) -> list[dict[str, Any]]:
    from ai_edge_litert.interpreter import Interpreter

    with quiet_fds():
        interpreter = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(x_nhwc.shape))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    scale, zp = inp["quantization"]
    q = np.clip(np.round(x_nhwc / scale) + zp, -128, 127).astype(inp["dtype"]) if scale else x_nhwc
    interpreter.set_tensor(inp["index"], q)
    interpreter.invoke()
    found = []
    for detail in interpreter.get_tensor_details():
        qp = detail["quantization_parameters"]
        if detail["dtype"] != np.int8 or len(qp["scales"]) != 1:
            continue
        try:
            value = interpreter.get_tensor(detail["index"])
        except ValueError:
            continue
        found.append({"name": detail["name"], "scale": float(qp["scales"][0]), "zero_point": int(qp["zero_points"][0]),
                      "value": value})
    return found


def use_minmax_observers() -> None:
    """The XNNPACK PTQ config with MinMaxObserver for activations instead of HistogramObserver."""
    import torchao.testing.pt2e._xnnpack_quantizer as xq
    from torchao.quantization.pt2e import MinMaxObserver

    original = xq.get_symmetric_quantization_config

    def config(*args: Any, **kwargs: Any) -> Any:
        import dataclasses

        cfg = original(*args, **kwargs)
        act = dataclasses.replace(cfg.input_activation, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))
        out = dataclasses.replace(cfg.output_activation, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12))
        return dataclasses.replace(cfg, input_activation=act, output_activation=out)

    xq.get_symmetric_quantization_config = config


def to_nhwc(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def compare(reference: list[dict[str, Any]], tflite: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for ref in reference:
        want = to_nhwc(ref["value"]).astype(np.int32)
        matches = [t for t in tflite if t["zero_point"] == ref["zero_point"]
                   and abs(t["scale"] - ref["scale"]) <= 1e-6 * ref["scale"] and t["value"].size == want.size]
        row: dict[str, Any] = {"node": ref["node"], "scale": ref["scale"], "zero_point": ref["zero_point"],
                               "shape": list(want.shape)}
        if not matches:
            close = sorted(tflite, key=lambda t: abs(np.log(t["scale"] / ref["scale"])) if t["value"].size == want.size
                           else np.inf)[:1]
            row["tflite"] = None
            if close and close[0]["value"].size == want.size:
                got = close[0]["value"].reshape(want.shape).astype(np.int32) * 0 + close[0]["value"].reshape(want.shape)
                row["nearest"] = {"name": close[0]["name"], "scale": close[0]["scale"],
                                  "zero_point": close[0]["zero_point"],
                                  "max_abs_real_diff": float(np.max(np.abs(
                                      (got.astype(np.float64) - close[0]["zero_point"]) * close[0]["scale"]
                                      - (want - ref["zero_point"]) * ref["scale"])))}
            rows.append(row)
            continue
        best = min(matches, key=lambda t: float(np.mean(np.abs(t["value"].reshape(want.shape).astype(np.int32) - want))))
        diff = np.abs(best["value"].reshape(want.shape).astype(np.int32) - want)
        row.update(tflite=best["name"], off_by_more_than_1=float(np.mean(diff > 1)), max_steps=int(diff.max()),
                   mean_steps=float(diff.mean()))
        rows.append(row)
    return rows


def whole_split_agreement(graph: torch.nn.Module, path: Path, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Top-1 agreement and both accuracies over the whole evaluation split."""
    from edgekit.runtime.runners import open_runner, tflite_io

    with torch.no_grad():  # in chunks: the graph's batch dimension is capped at 4096
        torch_top1 = torch.cat([graph(x[i:i + 1024]).argmax(1) for i in range(0, len(x), 1024)]).numpy()
    tflite_top1 = open_runner(path, tflite_io(path), threads=1)(x.numpy()).argmax(1)
    labels = y.numpy()
    return {"images": len(labels), "agreement": float(np.mean(torch_top1 == tflite_top1)),
            "pytorch_accuracy": float(np.mean(torch_top1 == labels)),
            "tflite_accuracy": float(np.mean(tflite_top1 == labels))}


def summary(files: list[Path]) -> str:
    """One Markdown table of several runs' JSON files: whole-split agreement and the worst layers."""
    lines = ["# PTQ INT8 TFLite against its PT2E graph", "",
             "Made by `python benchmarks/ptq_tflite_layers.py RUN_DIR [--data DIR] [--observer minmax] [--keep-constant-channels]",
             "[--keep-requantization] --out X`",
             "for each row, then `--summarize X.json ... --out benchmarks/results/ptq_tflite_layers`. Agreement and",
             "accuracies over the whole evaluation split; layers: share of int8 elements more than one step apart",
             "(64 images), post-activation tensors only.", "",
             "| Run | Observer | Constant channels zeroed | Requantization before conv/linear removed | Images | Agreement % | PyTorch PTQ % | TFLite PTQ % | Worst layer >1 step |",
             "|---|---|---|---|---|---|---|---|---|"]
    for f in files:
        r = json.loads(f.read_text())
        w = r["whole_split"]
        paired = [x for x in r["layers"] if x.get("tflite")]
        # A conv's pre-activation tensor shares its qparams with the activation TFLite fuses it into; keep the
        # later node of each TFLite tensor, the one the fused kernel really writes.
        last = {x["tflite"]: x for x in paired}
        worst = max(last.values(), key=lambda x: x["off_by_more_than_1"])
        lines.append(f"| {r.get('label') or r['run']} | {r.get('observer', 'histogram')} | {'yes' if r.get('constant_channels_zeroed', True) else 'no'} | "
                     f"{'yes' if r.get('requantization_removed', False) else 'no'} | "
                     f"{w['images']} | {100 * w['agreement']:.2f} | {100 * w['pytorch_accuracy']:.2f} | "
                     f"{100 * w['tflite_accuracy']:.2f} | {worst['node']} {100 * worst['off_by_more_than_1']:.1f} % |")
    return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--summarize":
        at = sys.argv.index("--out")
        files, out = [Path(a) for a in sys.argv[2:at]], Path(sys.argv[at + 1])
        out.with_suffix(".md").write_text(summary(files))
        out.with_suffix(".json").write_text(json.dumps({"runs": [json.loads(f.read_text()) for f in files]}, indent=1) + "\n")
        print(out.with_suffix(".md").read_text())
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--label", default=None, help="the run's name in the summary table")
    parser.add_argument("--data", default=None)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--observer", choices=("histogram", "minmax"), default="histogram")
    parser.add_argument("--keep-constant-channels", action="store_true",
                        help="skip edgekit's zeroing of constant channels (quantize/constant_channels.py): the old behaviour")
    parser.add_argument("--keep-requantization", action="store_true",
                        help="skip edgekit's one scale per tensor at conv/linear inputs (quantize/one_scale_per_tensor.py): the old behaviour")
    parser.add_argument("--out", type=Path, default=None, help="write OUT.json")
    args = parser.parse_args()
    settings = build_settings({}, {"data": args.data, "size": args.size})
    ctx = StageContext(settings, args.run)
    x, _ = ctx.eval_split()
    x = x[:args.images]
    x_train, y_train = ctx.split("train")
    if args.observer == "minmax":
        use_minmax_observers()
    if args.keep_constant_channels:
        pt2e.zero_constant_channels = lambda model: {}
    if args.keep_requantization:
        pt2e.without_requantization = lambda quantizer: quantizer
    prepared = pt2e.prepare(load_student(stage_dir(args.run, "distill")), x_train[:2], "ptq")
    calibrate(prepared, x_train, images=settings.calibration_batches * settings.batch_size,
              batch_size=settings.batch_size, seed=settings.seed)
    graph = pt2e.convert(prepared)
    reference = torch_quantize_outputs(graph, x)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model_int8.tflite"
        export_tflite(graph, x[:1], path, int8=True)
        tflite = tflite_int8_tensors(path, x.permute(0, 2, 3, 1).contiguous().numpy())
        agreement = whole_split_agreement(graph, path, *ctx.eval_split())
    rows = compare(reference, tflite)
    for row in rows:
        if row.get("tflite"):
            print(f"{row['node']:40s} {str(row['shape']):22s} >1 step {row['off_by_more_than_1']:7.2%}  max {row['max_steps']:4d}")
        else:
            print(f"{row['node']:40s} {str(row['shape']):22s} no TFLite tensor with these qparams; nearest {row.get('nearest')}")
    print(json.dumps(agreement))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({"run": str(args.run), "label": args.label, "images": len(x), "observer": args.observer,
                                                                        "constant_channels_zeroed": not args.keep_constant_channels,
                                                                        "requantization_removed": not args.keep_requantization,
                                                                        "whole_split": agreement, "layers": rows},
                                                            indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
