"""arangotasks: ArangoDB's /_api/tasks as a standalone, durable service."""

__version__ = "0.1.0"
