"""How the client prints: aligned tables for people, JSON for scripts."""

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

MAX_CELL = 60  # longer cells (errors, results) are cut in tables; --json has them whole


def cell(value: Any) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())  # one line per row
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO = sys.stdout) -> None:
    """Left-aligned columns separated by two spaces, with an upper-case header."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [len(name) for name in columns]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    for row in [[name.upper() for name in columns], *cells]:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(line.rstrip(), file=out)


def fixed_row(cells: Sequence[str], widths: Sequence[int], out: TextIO = sys.stdout) -> None:
    """One row padded to given widths (a cell wider than its column pushes the rest right)."""
    line = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
    print(line.rstrip(), file=out)


def details(pairs: Sequence[tuple[str, Any]], out: TextIO = sys.stdout) -> None:
    """``key: value`` lines with aligned values; multi-line values keep their lines."""
    width = max((len(key) for key, _ in pairs), default=0)
    for key, value in pairs:
        text = "-" if value is None else value if isinstance(value, str) else _json(value)
        lines = text.splitlines() or [""]
        print(f"{key + ':':<{width + 1}} {lines[0]}", file=out)
        for line in lines[1:]:
            print(" " * (width + 2) + line, file=out)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def emit_json(value: Any, out: TextIO = sys.stdout, *, compact: bool = False) -> None:
    """JSON for scripts: indented, or one line (``--follow`` prints JSON Lines)."""
    if compact:
        print(json.dumps(value, ensure_ascii=False, separators=(",", ":")), file=out)
    else:
        print(json.dumps(value, ensure_ascii=False, indent=2), file=out)
    out.flush()


def seconds(value: Any) -> str:
    """A period in seconds as people write it: 90 -> 1m30s, 0.5 -> 0.5s."""
    if not isinstance(value, int | float):
        return cell(value)
    if value < 60:
        return f"{value:g}s"
    whole = int(value)
    rest = value - whole
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    if whole or rest:
        parts.append(f"{whole + rest:g}s")
    return "".join(parts)


def when(iso: Any) -> str:
    """An RFC 3339 time of the API, to the second: ``2026-11-23 10:00:00Z``."""
    if not isinstance(iso, str):
        return "-"
    return iso[:19].replace("T", " ") + "Z"
