"""The dashboard's URL prefix (a leaf module: the API middleware needs it without the views)."""

PREFIX = "/ui"


def is_ui(path: str) -> bool:
    """Whether ``path`` belongs to the dashboard (which has its own sessions, not API auth)."""
    return path == PREFIX or path.startswith(PREFIX + "/")
