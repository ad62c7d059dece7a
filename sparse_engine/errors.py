"""The one error type the engine raises for bad input: its message is the one line a user sees."""


class EngineError(Exception):
    """A model, flag or toolchain problem, with a one-line message naming what is wrong."""


def node_error(node_name: str, op_type: str, reason: str) -> EngineError:
    return EngineError(f"node '{node_name}' ({op_type}): {reason}")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty), for
    one-line errors that quote what a library said."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
