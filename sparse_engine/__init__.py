"""SparseEngine: standard QDQ int8 ONNX -> bit-exact integer IR -> C for Cortex-M (numpy, onnx, jinja2 only)."""

from .compiler import compile_model
from .errors import EngineError

__all__ = ["compile_model", "EngineError"]
