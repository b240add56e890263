"""Per-layer INT8 error across formats: each quantized conv/linear layer of the student, found by its module path
in the PyTorch graphs and by its int8 weights in the exported files, compared layer by layer (issue 21)."""
