"""The JavaScript sandbox: task commands run in QuickJS inside worker processes."""

from typing import TYPE_CHECKING

from arangotasks.sandbox.base import Limits, Sandbox, SandboxUnavailableError

if TYPE_CHECKING:
    from arangotasks.sandbox.pool import QuickJSSandbox

__all__ = ["Limits", "QuickJSSandbox", "Sandbox", "SandboxUnavailableError"]


def __getattr__(name: str) -> object:
    # Imported lazily: every worker process imports this package, and asyncio would add
    # ~50 ms to each worker's start (and respawn).
    if name == "QuickJSSandbox":
        from arangotasks.sandbox.pool import QuickJSSandbox

        return QuickJSSandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
