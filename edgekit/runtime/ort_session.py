"""One way to open an onnxruntime session, for every place edgekit runs an ONNX file: the way an app does.

Every file is run in a plain session: default options but the thread count, the CPU provider. No session
option is needed for the INT8 file to be right: its activations are uint8 (export/onnx_uint8_activations.py),
so onnxruntime fuses it into integer kernels whole, and for x86 targets its weights are 7-bit
(``weight_range``), so the U8S8 kernels of x86 CPUs without VNNI cannot saturate. ``SESSION_CONFIG`` is what
preprocess.json tells apps to set (``session_config``); it is empty, and a non-empty one would be shown in
the file's report row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SESSION_CONFIG: dict[str, str] = {}


def open_session(path: Path | str | bytes, threads: int | None = None, profile_prefix: str | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU, quiet, ``threads`` intra-op threads (None: ORT's choice);
    ``path`` may also be a serialized model (a graph edgekit changed in memory)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    for key, value in SESSION_CONFIG.items():
        opts.add_session_config_entry(key, value)
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
