"""XSD schemas of edXML packages, shipped as package data (see README.md here)."""

from importlib.resources import files
from pathlib import Path


def schema_path(name: str) -> Path:
    """Where an installed or checked-out schema file is, as a filesystem path."""
    return Path(str(files(__name__) / name))
