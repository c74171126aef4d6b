"""The /ui dashboard: static pages served by the app itself (same origin, no CDN).

The pages hold no data: they are public, and every read they make goes through the API
with the key the user pasted (kept in sessionStorage, sent as X-API-Key). The chart
library comes from npm (web/ui/package.json, pinned by its lock file), served from
node_modules as it is: there is no build step.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
STATIC_DIR = UI_DIR / "static"
UPLOT_DIR = UI_DIR / "node_modules" / "uplot" / "dist"
UI_PREFIX = "/ui"

# The page runs only its own scripts and talks only to its own origin; it cannot be framed.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get(UI_PREFIX)
def ui_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)


@router.get(f"{UI_PREFIX}/")
def ui_page_slash() -> RedirectResponse:
    return RedirectResponse(UI_PREFIX)


def mount_ui(app: FastAPI) -> None:
    """The page, its scripts and styles, and the chart library from node_modules."""
    app.include_router(router)
    app.mount(f"{UI_PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    # check_dir=False: without `make` having installed node_modules the app still serves the
    # API, and the page says what to run instead of drawing a chart.
    app.mount(
        f"{UI_PREFIX}/vendor/uplot",
        StaticFiles(directory=UPLOT_DIR, check_dir=False),
        name="ui-uplot",
    )
