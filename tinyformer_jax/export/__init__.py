"""Float graph through jax2onnx, graph cleanup, then our own QDQ insertion with the learned scales."""
