"""ExecuTorch ``.pte`` files in ``executorch.runtime`` (the XNNPACK delegate inside the file), fed and read as
preprocess.json says, with the same interface as the runners in runners.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.runtime.quiet import quiet_fds
from edgekit.runtime.runners import _Runner

METHOD = "forward"
# ExecuTorch's ScalarType codes (the same numbering as c10::ScalarType) of the dtypes preprocess.json names
SCALAR_TYPES = {0: "uint8", 1: "int8", 6: "float32"}


def set_threads(threads: int | None) -> None:
    """The size of ExecuTorch's one process-wide threadpool, which the XNNPACK delegate runs on (None: as it is).

    The reset is only safe while no method runs, which holds here: edgekit runs one call at a time."""
    with quiet_fds():  # the runtime logs its CPU detection and each resize on stderr
        from executorch.extension.pybindings.portable_lib import _threadpool_get_thread_count, _unsafe_reset_threadpool

        if threads and _threadpool_get_thread_count() != threads:
            _unsafe_reset_threadpool(threads)


def load_program(path: Path) -> Any:
    from executorch.runtime import Runtime

    with quiet_fds():
        return Runtime.get().load_program(Path(path))


class ExecuTorchRunner(_Runner):
    runtime = "executorch"

    def __init__(self, path: Path, entry: dict[str, Any], threads: int | None) -> None:
        super().__init__(entry)
        self.threads = threads
        set_threads(threads)
        self.program = load_program(path)
        self.method = self.program.load_method(METHOD)

    def run_prepared(self, x: np.ndarray) -> list[np.ndarray]:
        import torch

        # the runtime reads the input's memory in C order and ignores its strides: a transposed view would be misread
        return [o.numpy() for o in self.method.execute([torch.from_numpy(np.ascontiguousarray(x))])]

    def outputs(self, x_nchw: np.ndarray) -> dict[str, np.ndarray]:
        set_threads(self.threads)  # another runner may have resized the shared threadpool since
        return self._image_by_image(x_nchw)  # lowered for one image, as an app feeds it


def pte_io(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    """Input/output shapes and dtypes of a .pte's ``forward``, as preprocess.json states them. Inputs and outputs
    have no names in ExecuTorch: ``input`` names the method, and the outputs keep the model's order, ``names``."""
    meta = load_program(path).metadata(METHOD)
    if meta.num_inputs() != 1 or meta.num_outputs() != len(names):
        raise ValueError(f"{Path(path).name}: {meta.num_inputs()} inputs and {meta.num_outputs()} outputs, "
                         f"expected 1 and {len(names)}")
    inp = meta.input_tensor_meta(0)
    outs = [SCALAR_TYPES[meta.output_tensor_meta(i).dtype()] for i in range(meta.num_outputs())]
    entry: dict[str, Any] = {"input": METHOD, "layout": "NCHW", "input_shape": [int(v) for v in inp.sizes()],
                             "input_dtype": SCALAR_TYPES[inp.dtype()]}
    if len(outs) == 1:
        entry["output_dtype"] = outs[0]
    entry["outputs"] = {name: {"index": i, "dtype": dtype} for i, (name, dtype) in enumerate(zip(names, outs))}
    return entry
