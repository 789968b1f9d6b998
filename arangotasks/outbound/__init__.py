"""Outbound HTTP for task code: the ``http.request`` host call behind ``@arangodb/request`` and
``fetch``, with its allowlist and limits."""

from arangotasks.outbound.handler import Outbound, load_overrides

__all__ = ["Outbound", "load_overrides"]
