"""The dashboard's files over real HTTP: public (they hold no data), same origin, locked down."""

from __future__ import annotations

import glob
import re
import tomllib

import httpx

from tests.support import ROOT

STATIC = ROOT / "web" / "ui" / "static"
STATIC_IMPORT = r'from "(\.[^"]+)"'
DYNAMIC_IMPORT = r'import\("(\.[^"]+)"\)'


def dashboard_modules() -> list[str]:
    """Every script of the dashboard, as a path under /ui/static/."""
    return sorted(path.relative_to(STATIC).as_posix() for path in STATIC.rglob("*.js"))


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
    modules = dashboard_modules()
    assert {"app.js", "api.js", "chart.js", "router.js", "pages/metric.js"} <= set(modules)
    for module in modules:
        response = anonymous.get(f"/ui/static/{module}")
        assert response.status_code == 200, module
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


def imports(module: str, pattern: str) -> set[str]:
    """The modules `module` imports (by `pattern`'s one group: a relative path)."""
    source = STATIC / module
    found = set()
    for imported in re.findall(pattern, source.read_text()):
        path = (source.parent / imported).resolve()
        assert path.is_file(), f"{module} imports {imported}, which is not there"
        found.add(path.relative_to(STATIC).as_posix())
    return found


def test_a_metric_pages_modules_are_preloaded_and_every_import_resolves() -> None:
    """index.html preloads the modules a metric's chart waits for (app.js with what it
    imports, and the metric page's); other pages are imported when first shown."""
    for module in dashboard_modules():
        imports(module, DYNAMIC_IMPORT)
    needed, todo = set(), ["app.js", "pages/metric.js"]
    while todo:
        module = todo.pop()
        if module not in needed:
            needed.add(module)
            todo.extend(imports(module, STATIC_IMPORT))
    page = (STATIC / "index.html").read_text()
    preloaded = set(re.findall(r'rel="modulepreload" href="/ui/static/([^"]+)"', page))
    assert preloaded == needed - {"app.js"}
    assert imports("app.js", DYNAMIC_IMPORT) >= {"pages/metric.js", "pages/sign-in.js"}


def test_every_dashboard_file_is_in_the_package() -> None:
    """pyproject's package-data, globbed as setuptools does, takes in every file under
    web/ui/static (the wheel and the web image serve /ui from the installed package)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["web"]
    packaged = {
        found
        for pattern in patterns
        for found in glob.glob(pattern, root_dir=ROOT / "web", recursive=True)
    }
    files = {
        path.relative_to(ROOT / "web").as_posix() for path in STATIC.rglob("*") if path.is_file()
    }
    assert files - packaged == set()
