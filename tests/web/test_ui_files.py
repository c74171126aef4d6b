"""The dashboard's files over real HTTP: public (they hold no data), same origin, locked down."""

from __future__ import annotations

import httpx


def test_ui_page_is_served_without_a_key_with_a_strict_policy(anonymous: httpx.Client) -> None:
    response = anonymous.get("/ui")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    # Everything the page loads comes from this origin: no CDN.
    assert "://" not in response.text


def test_ui_scripts_and_the_chart_library_are_served(anonymous: httpx.Client) -> None:
    for path in ("/ui/static/app.js", "/ui/static/chart.js", "/ui/static/api.js"):
        response = anonymous.get(path)
        assert response.status_code == 200, path
        assert "javascript" in response.headers["content-type"]
    uplot = anonymous.get("/ui/vendor/uplot/uPlot.iife.min.js")
    assert uplot.status_code == 200, "run `make` to install web/ui/node_modules"
    assert "uPlot" in uplot.text


def test_ui_paths_reach_no_other_file_and_the_api_still_needs_a_key(
    anonymous: httpx.Client,
) -> None:
    for path in (
        "/ui/static/../../main.py",  # normalised by the client to /main.py: 401, not public
        "/ui/static/%2e%2e/%2e%2e/main.py",
        "/ui/static/..%2f..%2fmain.py",
        "/ui/vendor/uplot/%2e%2e/%2e%2e/package-lock.json",
    ):
        response = anonymous.get(path)
        assert response.status_code in (401, 404), path
        assert "import" not in response.text and "lockfileVersion" not in response.text
    slash = anonymous.get("/ui/")
    assert slash.status_code == 307 and slash.headers["location"] == "/ui"
    assert anonymous.get("/api/services").status_code == 401
