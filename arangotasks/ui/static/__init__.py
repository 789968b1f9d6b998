"""The dashboard's static files (shipped in the package)."""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent
