"""Redaction of secret values from run records and log lines.

A value is replaced by ``***`` in each of the forms in which task code could pass it on: as is,
JSON-escaped (also twice, and with non-ASCII escaped), base64 (standard and URL-safe, with and
without padding, and at each of the three byte alignments it can have inside a longer base64
text, as GitHub Actions masks secrets) and URL-encoded (``encodeURIComponent``, ``encodeURI``,
form encoding, Python's ``quote``; upper- and lower-case hex; and any mix of encoded and plain
characters, as a normalising HTTP client writes a URL). Values shorter than
``MIN_LENGTH`` characters are not redacted: masking every "a" or "42" would destroy the record
and reveal the value anyway.
"""

import base64
import functools
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from arangotasks.models import Run, RunOutcome

MASK = "***"
MIN_LENGTH = 4
# How a text cut short ends: "..." (outbound HTTP's URLs and errors), "... [N bytes cut]" (the
# worker's caps on error messages and stacks).
_CUT = re.compile(r"\.\.\.(?: \[\d+ bytes cut\])?\Z")
MAX_URL_PATTERN = 2048  # longer values are masked in their fixed URL encodings only
_URI_COMPONENT_SAFE = "-_.!~*'()"
_URI_SAFE = _URI_COMPONENT_SAFE + ";,/?:@&=+$#"
_PERCENT = re.compile(r"%[0-9A-F]{2}")


def _base64_forms(data: bytes) -> set[str]:
    whole = base64.b64encode(data).decode()
    forms = {whole, whole.rstrip("=")}
    # Inside a longer base64 text (e.g. the "user:password" of a Basic header) the value starts
    # at byte offset 0, 1 or 2 of a 3-byte group: keep the characters that encode only its bits.
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode()
        start = -(-8 * shift // 6)  # the first character without bits of the prefix
        end = 8 * (shift + len(data)) // 6  # the last character with only the value's bits
        forms.add(encoded[start:end])
    return forms | {form.replace("+", "-").replace("/", "_") for form in forms}


def _url_forms(value: str) -> set[str]:
    forms = {
        quote(value, safe=_URI_COMPONENT_SAFE),
        quote(value, safe=_URI_SAFE),
        quote(value, safe=""),
        quote(value),  # Python's default: "/" kept
        quote_plus(value, safe=_URI_COMPONENT_SAFE),
    }
    return forms | {_PERCENT.sub(lambda m: m.group(0).lower(), form) for form in forms}


def _json_forms(value: str) -> set[str]:
    once = json.dumps(value, ensure_ascii=False)[1:-1]
    ascii_once = json.dumps(value)[1:-1]
    return {
        once,
        ascii_once,
        json.dumps(once, ensure_ascii=False)[1:-1],
        json.dumps(ascii_once)[1:-1],
    }


def forms_of(value: str) -> set[str]:
    """Every form of ``value`` that is redacted (empty for a value too short to redact)."""
    if len(value) < MIN_LENGTH:
        return set()
    data = value.encode("utf-8", errors="surrogatepass")
    forms = {value} | _json_forms(value) | _url_forms(value) | _base64_forms(data)
    return {form for form in forms if len(form) >= MIN_LENGTH}


def _url_pattern(value: str) -> str:
    """A pattern matching ``value`` with any of its characters percent-encoded or not (and a
    space as ``+``): HTTP clients normalise URLs (yarl decodes ``%24`` back to ``$``), so the
    URL in a request record can mix encoded and plain characters."""
    parts = []
    for char in value:
        encoded = "".join(
            f"%[{b >> 4:X}{b >> 4:x}][{b & 15:X}{b & 15:x}]"
            for b in char.encode("utf-8", errors="surrogatepass")
        )
        plain = r"(?: |\+)" if char == " " else re.escape(char)
        parts.append(f"(?:{plain}|{encoded})")
    return "".join(parts)


class Redactor:
    """Replaces every form of some values by ``***``; falsy when there is nothing to redact."""

    def __init__(self, values: Iterable[str] = ()):
        forms: set[str] = set()
        mixed: set[str] = set()
        for value in values:
            value_forms = forms_of(value)
            forms |= value_forms
            if value_forms and len(value) <= MAX_URL_PATTERN:
                mixed.add(_url_pattern(value))
        # Longest first, so that a form containing another is masked whole; then the patterns
        # of mixed URL encodings.
        self._forms = sorted(forms, key=lambda f: (-len(f), f))
        ordered = [re.escape(form) for form in self._forms]
        ordered += sorted(mixed)
        self._pattern = re.compile("|".join(ordered)) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def clipped(self, text: str) -> str:
        """:meth:`text`, and for a text cut short (ending in ``...`` or the worker's
        ``... [N bytes cut]``), a start of a form left just before the cut is masked too: the
        cut must not reveal a piece of a value."""
        text = self.text(text)
        cut = _CUT.search(text)
        if cut is None:
            return text
        body, marker = text[: cut.start()], cut.group(0)
        for form in self._forms:
            for size in range(len(form) - 1, MIN_LENGTH - 1, -1):
                if body.endswith(form[:size]):
                    return body[:-size] + MASK + marker
        return text

    def value(self, value: Any) -> Any:
        """``value`` with every string in it (keys too) redacted; other types unchanged."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        return value

    def json_text(self, text: str) -> str:
        """JSON text with the values redacted; still JSON (a value that was a bare number
        or spanned tokens leaves a JSON string of the redacted text)."""
        redacted = self.text(text)
        if redacted == text:
            return text
        try:
            json.loads(redacted)
        except ValueError:
            return json.dumps(redacted, ensure_ascii=False)
        return redacted

    def record(self, record: Run | RunOutcome) -> None:
        """Redact a run record or a sandbox outcome in place: result, output, error and the
        outbound requests."""
        if self._pattern is None:
            return
        if record.result_json is not None:
            record.result_json = self.json_text(record.result_json)
        record.output = [self.text(line) for line in record.output]
        if record.error is not None:
            record.error = {
                k: self.clipped(v) if isinstance(v, str) else self.value(v)
                for k, v in record.error.items()
            }
        if record.requests:
            # Their URLs and errors are clipped to a bound (arangotasks/outbound).
            record.requests = [
                {k: self.clipped(v) if isinstance(v, str) else v for k, v in entry.items()}
                if isinstance(entry, dict)
                else self.value(entry)
                for entry in record.requests
            ]


@functools.lru_cache(maxsize=128)
def redactor_for(values: frozenset[str]) -> Redactor:
    """A shared :class:`Redactor` of ``values``: building one costs about a millisecond (the
    forms and the pattern), and the runs of a task read the same secrets again and again."""
    return Redactor(values)
