"""What a counted click is: one sentence, defined once (`domain.report.COUNTED_CLICKS`) and said
word for word in the README, docs/bots.md, docs/reports.md, and the help of `clicktrail report`
(the dashboard's pages: tests/e2e/test_dashboard.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clicktrail.cli import app
from clicktrail.domain.report import COUNTED_CLICKS

ROOT = Path(__file__).resolve().parents[1]


def _flat(text: str) -> str:
    """Whitespace collapsed, so line wrapping does not matter."""
    return re.sub(r"\s+", " ", text)


def test_the_sentence_says_what_the_code_counts() -> None:
    for word in ("GET", "opt-out", "human", "suspect", "not given yet", "provisional", "delivered"):
        assert word in COUNTED_CLICKS


@pytest.mark.parametrize("doc", ["README.md", "docs/bots.md", "docs/reports.md"])
def test_the_docs_say_the_sentence(doc: str) -> None:
    assert _flat(COUNTED_CLICKS) in _flat((ROOT / doc).read_text(encoding="utf-8"))


def test_no_doc_says_unique_clicks_need_a_human_click() -> None:
    for doc in ("README.md", "docs/bots.md", "docs/reports.md", "docs/dashboard.md"):
        text = _flat((ROOT / doc).read_text(encoding="utf-8")).lower()
        assert "with a human click" not in text, doc
        assert "one `human` click" not in text, doc


def test_the_report_help_says_the_sentence() -> None:
    result = CliRunner().invoke(app, ["report", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    assert _flat(COUNTED_CLICKS) in _flat(result.output)
