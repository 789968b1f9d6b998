"""The README documents every setting (``ARANGOTASKS_<NAME>`` of each ``Settings`` field)."""

from pathlib import Path

from arangotasks.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_readme():
    text = README.read_text(encoding="utf-8")
    missing = [
        f"ARANGOTASKS_{name.upper()}"
        for name in Settings.model_fields
        if f"`ARANGOTASKS_{name.upper()}`" not in text
    ]
    assert missing == []
