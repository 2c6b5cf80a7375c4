"""The docs show the tables the code holds; these tests fail when they drift apart."""

from __future__ import annotations

from pathlib import Path

from registry import keys

ROOT = Path(__file__).resolve().parents[2]


def test_architecture_doc_shows_the_storage_layout_of_keys_py():
    doc = keys.__doc__
    layout = doc[doc.index("S3 bucket") : doc.index("A blob is served")].rstrip().replace("::\n", "\n")
    assert layout in (ROOT / "docs" / "architecture.md").read_text()
