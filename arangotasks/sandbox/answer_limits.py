"""What a run's answer may hold: the result within its limit (and nesting Python can read back),
texts cut to their limits with a marker, and the error of a run past its CPU time."""

import json

from arangotasks.models import ErrorType


def result_error(result: str | None, limit: int) -> dict[str, str] | None:
    """The run's error when its result (JSON text) is too large or too deeply nested to keep."""
    if result is None:
        return None
    size = len(result) if result.isascii() else len(result.encode("utf-8", "surrogatepass"))
    if size > limit:
        message = (
            f"the returned value is {size} bytes as JSON, beyond the result limit of {limit} "
            "bytes (ARANGOTASKS_RESULT_KB)"
        )
    else:
        try:
            json.loads(result)
            return None
        except RecursionError:
            message = "the returned value is nested too deeply"
    return {"type": ErrorType.RESULT, "name": "RangeError", "message": message, "stack": ""}


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-8 bytes, with a marker saying how much was cut."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text
    kept = data[: max(0, limit - 64)].decode("utf-8", "ignore")
    return f"{kept}... [{len(data) - len(kept.encode('utf-8', 'surrogatepass'))} bytes cut]"


def cpu_timeout_error(timeout: float) -> dict[str, str]:
    """The error of a run stopped at its CPU time limit."""
    message = f"interrupted: CPU time limit of {timeout:g} s exceeded"
    return {"type": ErrorType.TIMEOUT, "name": "InternalError", "message": message, "stack": ""}
