"""The report as an auditor sees it: opened from disk (file://) in a real headless Chromium."""

from __future__ import annotations

from tests.reports.browser import assert_rendered, browser, screenshot_dir


def test_reports_render_in_a_browser(tab_report, text_report, compare_report, tmp_path):
    shots = screenshot_dir(tmp_path)
    with browser() as chrome:
        tab = chrome.open(tab_report.report_path.as_uri(), shots / "report-tabular.png")
        text = chrome.open(text_report.report_path.as_uri(), shots / "report-text.png")
        cmp = chrome.open(compare_report[0].report_path.as_uri(), shots / "report-compare.png")
    assert_rendered(tab, "SHAP report · tiny-xgb v1", min_images=5)
    assert "Global importance" in tab.text and "Provenance" in tab.text
    # a 2-class text model shows one output: importance, words, predictions
    assert_rendered(text, "SHAP report · tiny-bert v1", min_images=3)
    assert "Words that push each class" in text.text and "Examples" in text.text
    assert (shots / "report-tabular.png").stat().st_size > 10_000
    assert_rendered(cmp, f"SHAP report · tiny-xgb v{compare_report[1]}", min_images=7)
    assert "Comparison with tiny-xgb v1" in cmp.text
