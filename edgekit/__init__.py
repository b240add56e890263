"""edgekit: distil a large PyTorch model into a small INT8 model for an edge device."""

__version__ = "0.1.0"
