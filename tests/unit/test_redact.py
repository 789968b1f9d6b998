"""Redaction: every form of a secret value becomes ***, in every part of a run record."""

import base64
import json
import re
from urllib.parse import quote, quote_plus

import pytest

from arangotasks.models import Run, RunTrigger
from arangotasks.redact import MASK, Redactor, forms_of

VALUE = 'pa$$ wörd/+?&="x'  # URL, JSON and base64 special characters, non-ASCII


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


ENCODED = {
    "raw": VALUE,
    "json": json.dumps(VALUE, ensure_ascii=False)[1:-1],
    "json-ascii": json.dumps(VALUE)[1:-1],
    "json-twice": json.dumps(json.dumps(VALUE)[1:-1])[1:-1],
    "base64": b64(VALUE),
    "base64-url": base64.urlsafe_b64encode(VALUE.encode()).decode(),
    "base64-unpadded": b64(VALUE).rstrip("="),
    "uri-component": quote(VALUE, safe="-_.!~*'()"),
    "uri": quote(VALUE, safe="-_.!~*'();,/?:@&=+$#"),
    "quote": quote(VALUE),
    "form": quote_plus(VALUE),
    "uri-lower-hex": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(VALUE, safe="")),
}


@pytest.mark.parametrize("form", list(ENCODED), ids=list(ENCODED))
def test_every_form_is_masked(form):
    encoded = ENCODED[form]
    assert form == "raw" or encoded != VALUE
    text = f"before {encoded} after"
    assert Redactor([VALUE]).text(text) == f"before {MASK} after"


@pytest.mark.parametrize("prefix", ["", "u", "us", "use", "user:", "Basic-"])
def test_base64_inside_a_longer_text_at_any_alignment(prefix):
    encoded = b64(prefix + VALUE + ":tail")
    redacted = Redactor([VALUE]).text(encoded)
    assert MASK in redacted
    # What is left cannot be decoded back to the value (nor to most of it).
    assert len(redacted) <= len(encoded) - len(b64(VALUE)) + len(MASK) + 4


def test_short_values_are_not_redacted():
    assert forms_of("abc") == set()
    redactor = Redactor(["abc", "a"])
    assert not redactor
    assert redactor.text("abc a") == "abc a"
    assert Redactor(["abcd"]).text("xabcdx") == f"x{MASK}x"


def test_longest_form_wins_and_several_values():
    redactor = Redactor(["secret", "secret-longer"])
    assert redactor.text("secret-longer secret") == f"{MASK} {MASK}"


def test_json_text_stays_json():
    redactor = Redactor(["12345", "a\"b'c"])
    assert redactor.json_text('{"k":"x12345y"}') == '{"k":"x***y"}'
    assert redactor.json_text('{"12345":1}') == '{"***":1}'
    assert redactor.json_text('["a\\"b\'c"]') == '["***"]'
    # A bare number that equals the value: the redacted text as a JSON string.
    assert json.loads(redactor.json_text("[12345]")) == "[***]"
    assert redactor.json_text('{"k":1}') == '{"k":1}'


def test_run_record_every_field():
    run = Run(1, "t", "n", "_system", "", RunTrigger.SCHEDULE, 0.0, 0.0)
    run.output = [f"token={VALUE}", "clean", f"b64={b64(VALUE)}"]
    run.result_json = json.dumps({"v": VALUE, VALUE: [quote(VALUE)]}, ensure_ascii=False)
    run.error = {
        "type": "exception",
        "name": "Error",
        "message": f"bad {VALUE}",
        "stack": f"at x ({json.dumps(VALUE)})",
    }
    run.requests = [
        {
            "method": "GET",
            "url": f"https://x.test/?k={quote(VALUE, safe='')}",
            "status": 200,
            "durationMs": 1.5,
            "error": None,
        },
        {
            "method": "POST",
            "url": "https://x.test/",
            "status": None,
            "durationMs": 0,
            "error": f"refused: {VALUE}",
        },
    ]
    Redactor([VALUE]).record(run)
    assert run.requests == [
        {
            "method": "GET",
            "url": "https://x.test/?k=***",
            "status": 200,
            "durationMs": 1.5,
            "error": None,
        },
        {
            "method": "POST",
            "url": "https://x.test/",
            "status": None,
            "durationMs": 0,
            "error": "refused: ***",
        },
    ]
    assert run.output == ["token=***", "clean", "b64=***"]
    assert json.loads(run.result_json) == {"v": MASK, MASK: [MASK]}
    assert run.error == {
        "type": "exception",
        "name": "Error",
        "message": "bad ***",
        "stack": 'at x ("***")',
    }


def test_nothing_to_redact_is_a_no_op():
    run = Run(1, "t", "n", "_system", "", RunTrigger.SCHEDULE, 0.0, 0.0, output=["x"])
    Redactor().record(run)
    assert run.output == ["x"]


def test_any_mix_of_url_encoding():
    # yarl writes encodeURIComponent's %24 and %2F back as "$" and "/" in a query.
    mixed = "pa$$/w%C3%B6rd%2B?%26%3d42"
    assert Redactor(["pa$$/wörd+?&=42"]).text(f"?key={mixed}&x=1") == "?key=***&x=1"
    assert Redactor(["a b c d"]).text("q=a+b%20c d") == "q=***"


def test_a_clipped_text_does_not_end_in_a_piece_of_a_value():
    redactor = Redactor(["0123456789abcdef"])
    assert redactor.clipped("https://x.test/?k=0123456...") == "https://x.test/?k=***..."
    assert redactor.clipped("https://x.test/?k=012...") == "https://x.test/?k=012..."  # < 4
    assert redactor.clipped("k=0123456789abcdef&more...") == "k=***&more..."
    assert redactor.clipped("no marker 0123456") == "no marker 0123456"


def test_clipped_request_urls_in_a_record():
    run = Run(1, "t", "n", "_system", "", RunTrigger.SCHEDULE, 0.0, 0.0)
    run.requests = [{"method": "GET", "url": "https://x.test/?k=" + VALUE[:8] + "...", "status": 1}]
    Redactor([VALUE]).record(run)
    assert run.requests[0]["url"] == "https://x.test/?k=***..."


def test_an_error_cut_by_the_worker_does_not_end_in_a_piece_of_a_value():
    run = Run(1, "t", "n", "_system", "", RunTrigger.SCHEDULE, 0.0, 0.0)
    run.error = {
        "type": "exception",
        "name": "Error",
        "message": "login as " + VALUE[:9] + "... [120 bytes cut]",
        "stack": "",
    }
    Redactor([VALUE]).record(run)
    assert run.error["message"] == "login as ***... [120 bytes cut]"
