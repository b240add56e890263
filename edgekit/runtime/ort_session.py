"""One way to open an onnxruntime session, for every place edgekit runs an ONNX file.

``session.x64quantprecision = 1`` is set on every session. Without it, onnxruntime on x86 CPUs with no
VNNI (AVX2, AVX-512 without VNNI: this host among them) runs integer convolutions with a U8S8 kernel
whose paired products saturate at 16 bits, and an INT8 file scores below its own PyTorch graph. The
built-in digits student lost 4.7 points that way (93.33 % against 98.06 %); with the option it scores
98.06 %. onnxruntime ignores the option on ARM and on VNNI CPUs, where no kernel saturates.
preprocess.json passes the same setting on to apps (``session_config``). A file onnxruntime cannot load
that way (another exporter's, sharing int8 initializers between convolutions) is opened with the default
kernels, and a warning says that its integer results on this host may be saturated.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

SESSION_CONFIG: dict[str, str] = {"session.x64quantprecision": "1"}


def open_session(path: Path | str, threads: int | None = None, profile_prefix: str | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU, quiet, ``threads`` intra-op threads (None: ORT's choice)."""
    import onnxruntime as ort

    def options(precise: bool) -> Any:
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 4 if precise else 3  # a refused precise load is retried, not logged
        if precise:
            for key, value in SESSION_CONFIG.items():
                opts.add_session_config_entry(key, value)
        if profile_prefix is not None:
            opts.enable_profiling = True
            opts.profile_file_prefix = profile_prefix
        return opts

    try:
        return ort.InferenceSession(str(path), options(True), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - retried below without the option; a file bad either way raises there
        session = ort.InferenceSession(str(path), options(False), providers=["CPUExecutionProvider"])
    warnings.warn(f"{Path(path).name}: onnxruntime cannot open it with session.x64quantprecision, so it runs with "
                  "the default integer kernels, whose results can saturate on x86 CPUs without VNNI")
    return session
