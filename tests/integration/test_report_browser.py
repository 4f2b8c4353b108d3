"""A real run's report.html opened in headless Chromium: every section renders, nothing fails to load."""

from __future__ import annotations

from pathlib import Path

from browser import PageWatch, chromium

SECTIONS = {
    "data": "Data",
    "metrics": "Metrics vs baseline",
    "diagnostics": "Learning curves and diagnostics",
    "figures": "Figures",
    "config": "Config",
}


def test_report_renders_offline(pbmc_run: Path, tmp_path: Path) -> None:
    report = (pbmc_run / "report.html").resolve()
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        watch = PageWatch(page)
        page.goto(report.as_uri(), wait_until="load")
        titles = page.eval_on_selector_all("section > h2", "hs => hs.map(h => h.textContent)")
        for anchor, title in SECTIONS.items():
            assert page.is_visible(f"section#{anchor}"), anchor
            assert title in titles
        assert "Deployment" in titles
        deployment = page.inner_text("section:has(h2:text-is('Deployment'))")
        assert "biodl serve" in deployment and "biodl export" in deployment
        # every nav link points at a section that exists
        anchors = page.eval_on_selector_all("nav a", "as => as.map(a => a.getAttribute('href').slice(1))")
        assert all(page.query_selector(f"section#{a}") is not None for a in anchors)
        # the figures are inline and decoded: learning curves and the confusion matrix
        images = page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0, src: i.src.slice(0, 22)}))"
        )
        assert len(images) >= 2 and all(i["ok"] for i in images), images
        assert all(i["src"].startswith("data:image/png;base64") for i in images)
        assert any("Confusion" in i["alt"] for i in images)
        assert page.inner_text("section#metrics table tbody").strip()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert not watch.failed, watch.failed
    assert not watch.console_errors, watch.console_errors
    assert all(u.startswith(("file:", "data:")) for u in watch.urls), watch.urls
