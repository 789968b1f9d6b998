"""Where the server is in its life: starting, ready, stopping (for the readiness route)."""

from enum import StrEnum


class Phase(StrEnum):
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"


class Lifecycle:
    """One per app: set ready once the store is open and the tasks are loaded, stopping when a
    stop begins."""

    def __init__(self) -> None:
        self.phase = Phase.STARTING

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY
