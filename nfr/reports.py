"""Write every report of a verdict into one results directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nfr.report_html import html_report
from nfr.report_index import write_index
from nfr.report_text import json_report, junit_xml, markdown
from nfr.verdict import Verdict

REPORT_FILES = {
    "markdown": "NFR-TEST-RESULTS.md",
    "junit": "junit.xml",
    "json": "results.json",
    "html": "report.html",
}


def write_reports(
    verdict: Verdict, out_dir: str | Path, extra: dict[str, Any] | None = None, index: bool = True
) -> dict[str, Path]:
    """NFR-TEST-RESULTS.md, junit.xml, results.json and report.html in ``out_dir``, then (``index``)
    refresh ``index.html`` of the directory holding it, listing every run there; returns their paths."""
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    texts = {
        "markdown": markdown(verdict, extra),
        "junit": junit_xml(verdict),
        "json": json_report(verdict, extra),
        "html": html_report(verdict, extra=extra),
    }
    paths = {}
    for kind, text in texts.items():
        path = target / REPORT_FILES[kind]
        path.write_text(text, encoding="utf-8")
        paths[kind] = path
    if index:
        paths["index"] = write_index(target.resolve().parent)
    return paths
