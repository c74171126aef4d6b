"""The /ui dashboard in a real Chromium (Playwright) against the app on the embedded store.

Each test leaves a screenshot in test-output/ui/ to look at, and fails on any error in
the browser console except the HTTP statuses it provokes on purpose (a wrong key's 401,
another user's 404). Skipped, saying why, where Chromium is not installed.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
import redis

from common.anomalies.models import NewAnomaly
from common.epoch import now_ms, to_epoch_ms
from common.ids import new_id
from common.maintenance.models import WindowSpec
from common.maintenance.reach import apply_reach
from common.scans.judging import horizon_ms
from common.settings import Settings
from common.stores import Repositories, redis_stores
from common.users.models import User
from tests.browser import chromium_path, launch_chromium, signed_in
from tests.fixtures_sweeps import Swept
from tests.support import ROOT, AppServer, start_app, stop_app
from tests.worker.incident_support import Outage, detect, make_outage
from tests.worker.support import (
    T0,
    WorkerProcess,
    add_metric,
    poll_job,
    seasonal_series,
    wait_for_reach,
)

if chromium_path() is None:
    pytest.skip(
        "browser tests need chromium: run `make test` as root (it apt-get installs it), "
        "or `apt-get install chromium`",
        allow_module_level=True,
    )

from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

SCREENSHOTS = ROOT / "test-output" / "ui"
LAYOUTS = {"desktop": (1280, 800), "phone": (390, 844)}
STEP = timedelta(minutes=5)
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)  # the machine may be busy; a failure still fails


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = launch_chromium(playwright)
    yield chromium
    chromium.close()


class Console:
    """Errors the page logged; `allowed` are HTTP statuses a test provokes on purpose."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: set[int] = set()

    def record(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def unexpected(self) -> list[str]:
        def provoked(text: str) -> bool:
            status = re.search(r"status of (\d{3})", text)
            return status is not None and int(status.group(1)) in self.allowed

        return [text for text in self.errors if not provoked(text)]


def open_page(
    browser: Browser, request: pytest.FixtureRequest, layout: str = "desktop"
) -> tuple[Page, Console]:
    width, height = LAYOUTS[layout]
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    console = Console()
    page.on("console", console.record)
    page.on("pageerror", lambda error: console.errors.append(f"page error: {error}"))

    def finish() -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        context.close()

    request.addfinalizer(finish)
    return page, console


@pytest.fixture
def open_dashboard(
    browser: Browser, request: pytest.FixtureRequest, app_server: AppServer
) -> Callable[..., tuple[Page, Console]]:
    """open_dashboard(key, route, layout="desktop"): a page already signed in with `key`,
    opened at the dashboard's `route` ("#/...")."""

    def open_at(key: str, route: str, layout: str = "desktop") -> tuple[Page, Console]:
        page, console = open_page(browser, request, layout)
        signed_in(page, key)
        page.goto(f"{app_server.base_url}/ui{route}")
        return page, console

    return open_at


@pytest.fixture
def owner(
    client: httpx.Client, store: Repositories
) -> tuple[httpx.Client, str, str, list[dict[str, object]]]:
    """A user (the `client`'s) with a service and a metric holding a series with spikes and
    three stored anomalies: (client, key, metric id, the anomalies as the API lists them)."""
    values = seasonal_series(1500, spike_at=700)
    values[1100] -= 35
    metric_id, ids = add_metric(client, store, values, step=STEP)
    found = [
        NewAnomaly(
            metric_id, ids[i], timestamp_ms=to_epoch_ms(T0 + i * STEP), value=float(values[i]),
            expected=50.0, lower=45.0, upper=55.0, score=3.0, method="rolling",
            event_start_ms=to_epoch_ms(T0 + i * STEP), event_end_ms=to_epoch_ms(T0 + i * STEP),
        )
        for i in (300, 700, 1100)
    ]  # fmt: skip
    store.anomalies.save(metric_id, found)
    listed = client.get(f"/api/metrics/{metric_id}/anomalies").json()["anomalies"]
    assert len(listed) == 3
    key = client.headers["X-API-Key"]
    return client, key, metric_id, listed


def wait_for_chart(page: Page) -> None:
    page.wait_for_selector("#chart[data-state=ready][data-markers]", state="attached")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll from Python: the page's CSP (rightly) forbids the eval wait_for_function needs."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def zoom_to_middle_fifth(page: Page) -> None:
    """Drag across the middle fifth of the owner's 1,500-reading chart; wait for the zoom."""
    page.locator("#chart").scroll_into_view_if_needed()
    box = page.locator("#chart .u-over").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.4, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
    page.mouse.up()
    chart = page.locator("#chart")
    wait_until(lambda: chart.get_attribute("data-readings") != "1500", "the zoomed chart")


def no_horizontal_scroll(page: Page) -> bool:
    sizes = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    return bool(sizes[0] <= sizes[1] + 1)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sign_in_and_open_a_metric_chart(
    browser: Browser,
    request: pytest.FixtureRequest,
    app_server: AppServer,
    owner: tuple[httpx.Client, str, str, list[dict[str, object]]],
    layout: str,
) -> None:
    client, key, metric_id, anomalies = owner
    page, console = open_page(browser, request, layout)
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(f"{app_server.base_url}/ui")
    page.fill("#api-key", key)
    page.click("button[type=submit]")
    service = client.get(
        f"/api/services/{client.get(f'/api/metrics/{metric_id}').json()['service_id']}"
    )
    page.click(f"text={service.json()['name']}")
    page.wait_for_selector("canvas.sparkline")
    row = page.locator("tr", has_text="cpu")
    # The last 24 h of data (288 readings) hold no anomaly; the count fills in on its own.
    wait_until(lambda: row.locator("td").nth(4).inner_text() == "0", "the anomaly count")
    row.locator("a").click()
    wait_for_chart(page)
    chart = page.locator("#chart")
    assert chart.get_attribute("data-readings") == "1500"
    assert 100 <= int(chart.get_attribute("data-points") or 0) <= 1500
    assert chart.get_attribute("data-markers") == str(len(anomalies))
    assert page.locator("#events tbody tr").count() == len(anomalies)
    assert page.locator("#chart canvas").bounding_box()["width"] > 300  # type: ignore[index]
    assert no_horizontal_scroll(page), f"the page scrolls sideways at {layout}"
    # Hovering the chart shows the reading under the cursor.
    box = page.locator("#chart .u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator(".tooltip")).to_contain_text("value")
    assert page.evaluate("sessionStorage.getItem('neonomaly.apiKey')") == key
    assert not [url for url in requested if key in url], "the key must never be in a URL"
    assert console.unexpected() == []


def test_wrong_key_is_refused(
    browser: Browser, request: pytest.FixtureRequest, app_server: AppServer
) -> None:
    page, console = open_page(browser, request)
    console.allowed = {401}
    page.goto(f"{app_server.base_url}/ui")
    page.fill("#api-key", "nno_not-a-key")
    page.click("button[type=submit]")
    expect(page.locator("#sign-in-status [role=alert]")).to_contain_text("refused")
    assert page.evaluate("sessionStorage.getItem('neonomaly.apiKey')") is None
    assert page.locator("#nav").is_hidden()
    assert console.unexpected() == []


def test_another_users_metric_is_not_found(
    open_dashboard: Callable[..., tuple[Page, Console]],
    owner: tuple[httpx.Client, str, str, list[dict[str, object]]],
    make_user: Callable[..., tuple[User, str]],
) -> None:
    _, _, metric_id, _ = owner
    _, other_key = make_user("intruder")
    page, console = open_dashboard(other_key, f"#/metrics/{metric_id}")
    console.allowed = {404}
    expect(page.locator("h1")).to_have_text("Metric not found")
    assert page.locator("#chart").count() == 0
    assert console.unexpected() == []


def test_zoom_by_dragging_and_the_range_picker(
    open_dashboard: Callable[..., tuple[Page, Console]],
    owner: tuple[httpx.Client, str, str, list[dict[str, object]]],
) -> None:
    _, key, metric_id, _ = owner
    page, console = open_dashboard(key, f"#/metrics/{metric_id}")
    wait_for_chart(page)
    # Drag over the middle fifth: the chart reloads that span only.
    zoom_to_middle_fifth(page)
    chart = page.locator("#chart")
    wait_for_chart(page)
    zoomed = int(chart.get_attribute("data-readings") or 0)
    assert 200 < zoomed < 400  # a fifth of 1500
    assert chart.get_attribute("data-markers") == "1"  # the spike at 700
    page.select_option("#range", "24h")  # the last 288 readings (5 min apart)
    page.wait_for_selector("#chart[data-state=ready][data-readings='288']")
    page.click("text=Reset")
    page.wait_for_selector("#chart[data-state=ready][data-readings='1500']")
    assert console.unexpected() == []


def test_maintenance_windows_are_shaded_and_their_anomalies_drawn_muted(
    open_dashboard: Callable[..., tuple[Page, Console]],
    owner: tuple[httpx.Client, str, str, list[dict[str, object]]],
    store: Repositories,
) -> None:
    client, key, metric_id, _ = owner

    def moment(i: int) -> str:  # the i-th reading's time
        return (T0 + i * STEP).strftime("%Y-%m-%dT%H:%M:%SZ")

    created = client.post(
        "/api/maintenance-windows",
        json={"metric_id": metric_id, "start": moment(650), "end": moment(750), "reason": "deploy"},
    )
    assert created.status_code == 201, created.text
    # An anomaly found inside the window (of a reading no anomaly flags yet) is stored muted.
    at = to_epoch_ms(T0 + 720 * STEP)
    store.anomalies.save(
        metric_id,
        [
            NewAnomaly(
                metric_id, "r720", timestamp_ms=at, value=60.0, expected=50.0, lower=45.0,
                upper=55.0, score=9.0, method="auto-online", event_start_ms=at, event_end_ms=at,
                muted=True,
            )
        ],
    )  # fmt: skip
    page, console = open_dashboard(key, f"#/metrics/{metric_id}")
    wait_for_chart(page)
    page.wait_for_selector("#chart[data-maintenance-spans='1']", state="attached")
    expect(page.locator("#chart-status")).to_contain_text("1 maintenance span")
    expect(page.locator("#legend")).to_contain_text("maintenance window")
    expect(page.locator("#legend")).to_contain_text("muted (maintenance)")
    expect(page.locator("#events")).to_contain_text("(muted)")
    # Zoomed to a span outside the window: nothing shaded.
    page.goto(
        page.url.split("#")[0] + f"#/metrics/{metric_id}?start={moment(100)}&end={moment(300)}"
    )
    page.wait_for_selector("#chart[data-state=ready][data-maintenance-spans='0']", state="attached")
    assert console.unexpected() == []


def test_a_window_muting_past_anomalies_says_so_until_a_worker_has(
    open_dashboard: Callable[..., tuple[Page, Console]],
    owner: tuple[httpx.Client, str, str, list[dict[str, object]]],
    store: Repositories,
) -> None:
    """A window's reach into the past (muting the anomalies already stored in it) is a
    worker's task: until it is applied, the chart says so; once it is, the chart is drawn
    again on its own, the anomaly in the window muted."""
    client, key, metric_id, _ = owner
    user_id = client.user.id  # type: ignore[attr-defined]
    # Made as POST does, without queueing the reach: no worker applies it before we do.
    window = store.maintenance.create(
        user_id,
        WindowSpec(
            reason="deploy",
            start_ms=to_epoch_ms(T0 + 650 * STEP),
            end_ms=to_epoch_ms(T0 + 750 * STEP),
            metric_id=metric_id,
        ),
        max_windows=100,
    )
    assert window.reach_pending
    page, console = open_dashboard(key, f"#/metrics/{metric_id}")
    wait_for_chart(page)
    page.wait_for_selector("#chart[data-maintenance-pending='1']", state="attached")
    expect(page.locator("#legend")).to_contain_text("maintenance window (muting past anomalies…)")
    expect(page.locator("#chart-status")).to_contain_text(
        "muting the anomalies already stored in 1 window…"
    )
    expect(page.locator("#events")).not_to_contain_text("(muted)")  # the one at reading 700
    report = apply_reach(store.maintenance, window.id, lambda ids: set(), horizon_ms(now_ms()))
    assert report is not None and report.muted == 1, report
    page.wait_for_selector("#chart[data-maintenance-pending='0']", state="attached")
    expect(page.locator("#legend")).to_contain_text("muted (maintenance)")
    expect(page.locator("#legend")).not_to_contain_text("muting past anomalies")
    expect(page.locator("#chart-status")).not_to_contain_text("muting")
    expect(page.locator("#events")).to_contain_text("(muted)")
    assert console.unexpected() == []


def test_a_metric_waiting_for_a_detector_rebuild_says_since_when(
    open_dashboard: Callable[..., tuple[Page, Console]],
    owner: tuple[httpx.Client, str, str, list[dict[str, object]]],
    store: Repositories,
    settings: Settings,
) -> None:
    """A sweep that leaves a metric's rebuild for later (SCAN_REBUILD_READINGS) marks it
    waiting: its page says since when, and the lag that has grown since; the scans list
    says how many such metrics the sweep left."""
    client, key, metric_id, _ = owner
    user_id = client.user.id  # type: ignore[attr-defined]
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    store.metrics.mark_rebuilds_waiting([(metric_id, to_epoch_ms(since))])
    shown = client.get(f"/api/metrics/{metric_id}").json()
    assert shown["scan_waiting_since"] is not None, shown
    page, console = open_dashboard(key, f"#/metrics/{metric_id}")
    status = page.locator("#scan-status")
    expect(status).to_contain_text("waits to be rebuilt by a later sweep")
    expect(status).to_contain_text(f"since {since.strftime('%Y-%m-%d %H:%M:%S')}Z")
    waited = re.search(r"have waited ([\d.]+) s so far", status.inner_text())
    assert waited is not None and 180 <= float(waited.group(1)) < 900, status.inner_text()
    # The sweep that left it waiting, as the owner's list of scans shows it.
    with redis.Redis.from_url(settings.redis_url or "") as connection:
        redis_stores(connection, settings).sweeps.start(
            new_id(), now_ms(), 0, queued=0, pending=0, rebuilds_waiting={user_id: 1}
        )
    page.click("#nav >> text=Jobs")
    expect(page.locator("#scans tbody tr").first).to_contain_text(
        "finished, 1 metric left waiting for a detector rebuild"
    )
    assert console.unexpected() == []


def test_verdicts_settings_and_a_window_from_the_metric_page(
    open_dashboard: Callable[..., tuple[Page, Console]],
    owner: tuple[httpx.Client, str, str, list[dict[str, object]]],
) -> None:
    client, key, metric_id, anomalies = owner
    page, console = open_dashboard(key, f"#/metrics/{metric_id}")
    wait_for_chart(page)
    # A verdict from the events under the chart.
    row = page.locator("#events tbody tr").first
    row.locator("button[data-verdict=confirmed]").click()
    expect(row.locator("button[data-verdict=confirmed]")).to_have_attribute("aria-pressed", "true")
    first = str(anomalies[0]["id"])
    assert client.get(f"/api/anomalies/{first}").json()["feedback"] == "confirmed"
    # Pressed again, the verdict is withdrawn.
    row.locator("button[data-verdict=confirmed]").click()
    expect(row.locator("button[data-verdict=confirmed]")).to_have_attribute("aria-pressed", "false")
    assert client.get(f"/api/anomalies/{first}").json()["feedback"] is None
    row.locator("button[data-verdict=confirmed]").click()
    expect(row.locator("button[data-verdict=confirmed]")).to_have_attribute("aria-pressed", "true")

    # The metric's own detection settings.
    page.select_option("#metric-settings select[name=direction]", "up")
    page.fill("#metric-settings input[name=min-deviation]", "5")
    page.click("#metric-settings button[type=submit]")
    expect(page.locator("#settings-status .success")).to_contain_text("Saved")
    detection = client.get(f"/api/metrics/{metric_id}").json()["detection"]
    assert detection["direction"] == "up" and detection["min_deviation"] == 5
    console.allowed = {422}  # provoked: the API wants a sensitivity above 0
    page.fill("#metric-settings input[name=metric-sensitivity]", "0")
    page.click("#metric-settings button[type=submit]")
    expect(page.locator("#settings-status .error")).to_contain_text("detection.sensitivity")

    # A maintenance window over the span shown: zoom there first (the drag's span).
    zoom_to_middle_fifth(page)
    wait_for_chart(page)
    page.fill("#maintenance input[name=reason]", "load test")
    page.click("#maintenance button[type=submit]")
    expect(page.locator("#maintenance-status .success")).to_contain_text("Muted")
    page.wait_for_selector("#chart[data-state=ready][data-maintenance-spans='1']", state="attached")
    [window] = client.get("/api/maintenance-windows").json()
    assert window["metric_id"] == metric_id and window["reason"] == "load test"
    assert window["start"] < window["end"]
    assert console.unexpected() == []


def window_listeners(page: Page, kind: str) -> int:
    """How many `kind` listeners are on the page's window (DevTools' own count)."""
    cdp = page.context.new_cdp_session(page)
    try:
        window = cdp.send("Runtime.evaluate", {"expression": "window"})["result"]
        found = cdp.send("DOMDebugger.getEventListeners", {"objectId": window["objectId"]})
        return sum(1 for listener in found["listeners"] if listener["type"] == kind)
    finally:
        cdp.detach()


@pytest.fixture
def unread_app(service_env: dict[str, str]) -> Iterator[AppServer]:
    """The app queueing jobs where no worker reads them: a job it accepts stays queued."""
    server = start_app(service_env, {"JOB_QUEUE": f"test-unread-{uuid.uuid4().hex}"})
    yield server
    stop_app(server)


def test_leaving_a_page_releases_its_chart_and_stops_its_polling(
    browser: Browser,
    request: pytest.FixtureRequest,
    unread_app: AppServer,
    owner: tuple[httpx.Client, str, str, list[dict[str, object]]],
) -> None:
    _, key, metric_id, _ = owner
    page, console = open_page(browser, request)
    signed_in(page, key)
    page.goto(f"{unread_app.base_url}/ui#/jobs")
    expect(page.locator("h1")).to_have_text("Jobs")
    without_chart = window_listeners(page, "resize")
    page.goto(f"{unread_app.base_url}/ui#/metrics/{metric_id}")
    wait_for_chart(page)
    assert window_listeners(page, "resize") > without_chart  # the chart follows the window
    page.click("#detect button[type=submit]")
    expect(page.locator("#job-status")).to_contain_text("queued")  # and polled every 300 ms
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.click("#nav >> text=Jobs")
    expect(page.locator("tbody .badge")).to_have_text("queued")
    page.wait_for_timeout(1500)  # five polls' time (and Playwright hands over the events)
    assert [url for url in asked if re.search(r"/api/jobs/[^/?]+$", url)] == [], (
        "the metric page still polls its job after it was left"
    )
    assert window_listeners(page, "resize") == without_chart, "the chart was not destroyed"
    assert console.unexpected() == []


@pytest.mark.slow
def test_detection_run_from_the_page_updates_the_chart(
    open_dashboard: Callable[..., tuple[Page, Console]],
    client: httpx.Client,
    store: Repositories,
    celery_worker: WorkerProcess,
) -> None:
    values = seasonal_series(2000, spike_at=1500)
    metric_id, _ = add_metric(client, store, values, step=STEP)
    key = client.headers["X-API-Key"]
    page, console = open_dashboard(key, f"#/metrics/{metric_id}")
    wait_for_chart(page)
    assert page.locator("#chart").get_attribute("data-markers") == "0"
    page.select_option("#detect select[name=method]", "rolling")
    page.fill("#detect input[name=window]", "48")
    page.click("#detect button[type=submit]")
    page.wait_for_selector("#job-status .success", timeout=120_000)
    job_id = page.locator("#job-status").get_attribute("data-job-id")
    assert job_id
    page.wait_for_selector(f"#chart-status:has-text('band from your job {job_id[:8]}')")
    wait_for_chart(page)
    anomalies = client.get(f"/api/metrics/{metric_id}/anomalies").json()["anomalies"]
    assert anomalies, "the job stored the spike"
    assert page.locator("#chart").get_attribute("data-markers") == str(len(anomalies))
    # The jobs page lists it, finished, with what it flagged.
    page.click("#nav >> text=Jobs")
    row = page.locator("tbody tr", has=page.locator(f"a[href='#/metrics/{metric_id}']"))
    expect(row.locator(".badge")).to_have_text("succeeded")
    expect(row).to_contain_text("rolling")
    assert console.unexpected() == []


def add_short_metric(client: httpx.Client, store: Repositories) -> str:
    """A metric of the `client`'s user: 150 readings with one spike (at 120), too few for
    auto's default detector, so auto runs rolling, which flags the spike alone."""
    values = np.random.default_rng(0).normal(50, 1, 150)
    values[120] += 30
    metric_id, _ = add_metric(client, store, values, step=STEP)
    return metric_id


@pytest.fixture
def short_metric(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> tuple[httpx.Client, str]:
    """A short metric (`add_short_metric`), with a worker to run its jobs."""
    return client, add_short_metric(client, store)


def run_job(client: httpx.Client, metric_id: str, **params: object) -> dict[str, object]:
    """A detection job of the metric, run by the worker; the job when it is final."""
    accepted = client.post(
        "/api/metrics/anomaly-detection", json={"metric_id": metric_id, **params}
    )
    assert accepted.status_code == 202, accepted.text
    return poll_job(client, accepted.json()["job_id"])


@pytest.mark.slow
def test_metric_page_says_how_far_scans_judged_and_keeps_the_users_band(
    open_dashboard: Callable[..., tuple[Page, Console]],
    client: httpx.Client,
    store: Repositories,
    sweep: Callable[..., Swept],
) -> None:
    values = seasonal_series(300, spike_at=290)
    start = datetime.now(UTC).replace(microsecond=0) - 300 * STEP
    metric_id, _ = add_metric(client, store, values, start=start, step=STEP)
    job = run_job(client, metric_id, method="rolling", window=48)
    assert job["status"] == "succeeded", job
    swept = sweep()  # after the user's job: its band stays the one drawn
    assert swept.totals.metrics_judged >= 1
    page, console = open_dashboard(client.headers["X-API-Key"], f"#/metrics/{metric_id}")
    wait_for_chart(page)
    expect(page.locator("#scan-status")).to_contain_text("Scans judged readings through")
    page.wait_for_selector(f"#chart-status:has-text('band from your job {str(job['id'])[:8]}')")
    page.click("#nav >> text=Jobs")
    expect(page.locator("#scans tbody tr").first).to_contain_text("finished")
    assert console.unexpected() == []


@dataclass(frozen=True)
class RanJobs:
    """Jobs of one short metric, run once for the jobs page's tests."""

    key: str
    metric_id: str
    metric_name: str  # service/metric, as the page names it
    by_method: dict[str, dict[str, object]]  # the newest of each method asked for


@pytest.fixture(scope="module")
def ran_jobs(
    app_server: AppServer,
    store: Repositories,
    make_user: Callable[..., tuple[User, str]],
    celery_worker: WorkerProcess,
) -> RanJobs:
    """A short metric (`add_short_metric`) of a user of its own, with four jobs run on it:
    STL (fails: no season in noise), then auto, rolling and auto again (the newest)."""
    _, key = make_user("jobs-page")
    with httpx.Client(base_url=app_server.base_url, headers={"X-API-Key": key}) as client:
        metric_id = add_short_metric(client, store)
        service_id = client.get(f"/api/metrics/{metric_id}").json()["service_id"]
        service = client.get(f"/api/services/{service_id}").json()["name"]
        by_method = {
            method: run_job(client, metric_id, method=method)
            for method in ("stl", "auto", "rolling", "auto")
        }
    return RanJobs(key, metric_id, f"{service}/cpu", by_method)


@pytest.mark.slow
def test_jobs_page_names_each_metric_asking_once_per_service(
    open_dashboard: Callable[..., tuple[Page, Console]], ran_jobs: RanJobs
) -> None:
    page, console = open_dashboard(ran_jobs.key, "#/")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.click("#nav >> text=Jobs")
    links = page.locator(f"tbody a[href='#/metrics/{ran_jobs.metric_id}']")
    expect(links).to_have_count(4)
    expect(links).to_have_text([ran_jobs.metric_name] * 4)
    # The names come from one list of the caller's metrics per service, not a read per row.
    assert [url for url in asked if f"/api/metrics/{ran_jobs.metric_id}" in url] == []
    assert len([url for url in asked if "/api/metrics/service/" in url]) == 1
    assert console.unexpected() == []


@pytest.mark.slow
def test_jobs_page_shows_the_method_that_ran(
    open_dashboard: Callable[..., tuple[Page, Console]], ran_jobs: RanJobs
) -> None:
    summary = ran_jobs.by_method["auto"]["summary"]
    assert isinstance(summary, dict) and summary["method"] == "rolling", summary
    page, console = open_dashboard(ran_jobs.key, "#/jobs")
    method = page.locator("tbody tr").nth(0).locator("td").nth(5)  # the newest: auto
    expect(method).to_have_text("rolling (auto fell back)")
    # Why, as the job's summary says it.
    expect(method).to_have_attribute("title", summary["method_params"]["auto"])
    assert console.unexpected() == []


@pytest.mark.slow
def test_jobs_page_shows_an_error_whole(
    open_dashboard: Callable[..., tuple[Page, Console]], ran_jobs: RanJobs
) -> None:
    job = ran_jobs.by_method["stl"]
    assert job["status"] == "failed" and "pass the period" in str(job["error"]), job
    page, console = open_dashboard(ran_jobs.key, "#/jobs")
    error = page.locator("tbody tr").nth(3).locator("td").nth(7)  # the oldest
    expect(error).to_have_text(str(job["error"]))
    # Wrapped in its cell, not pushed off the side of the table.
    sizes = page.evaluate(
        "(() => { const wrap = document.querySelector('.table-wrap');"
        " return [wrap.scrollWidth, wrap.clientWidth]; })()"
    )
    assert sizes[0] <= sizes[1], "the jobs table scrolls sideways to show the error"
    assert console.unexpected() == []


@pytest.mark.slow
def test_one_of_a_thing_is_not_written_as_many(
    open_dashboard: Callable[..., tuple[Page, Console]], short_metric: tuple[httpx.Client, str]
) -> None:
    client, metric_id = short_metric
    page, console = open_dashboard(client.headers["X-API-Key"], f"#/metrics/{metric_id}")
    wait_for_chart(page)
    page.click("#detect button[type=submit]")  # auto: the spike alone
    expect(page.locator("#job-status .success")).to_contain_text(
        "succeeded: 1 reading flagged, 1 event, 1 anomaly stored.", timeout=120_000
    )
    expect(page.locator("#chart-status")).to_contain_text("150 readings · 1 anomaly · band")
    assert console.unexpected() == []


@pytest.fixture
def incident(
    client: httpx.Client, store: Repositories, celery_worker: WorkerProcess
) -> tuple[httpx.Client, Outage, str]:
    """An open incident of the `client`'s user, made the real way: detection jobs on the
    worker over an outage where payments/error_rate broke 4 minutes before checkout/latency
    (checkout depends on payments). (client, the outage, the incident's id)."""
    outage = make_outage(client, store)
    detect(client, outage.latency)
    detect(client, outage.error_rate)
    [listed] = client.get("/api/incidents").json()["incidents"]
    return client, outage, str(listed["id"])


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS)
def test_incident_is_listed_opened_acknowledged_and_resolved(
    open_dashboard: Callable[..., tuple[Page, Console]],
    incident: tuple[httpx.Client, Outage, str],
    layout: str,
) -> None:
    client, outage, incident_id = incident
    key = client.headers["X-API-Key"]
    page, console = open_dashboard(key, "#/", layout)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.click("#nav >> text=Incidents")
    row = page.locator(f"tr[data-incident='{incident_id}']")
    expect(row.locator(".badge")).to_have_text("open")
    expect(row.locator(".top-cause")).to_have_text("payments/error_rate")
    # The list carries each incident's top cause: no request per incident (N+1).
    assert not [url for url in asked if f"/api/incidents/{incident_id}" in url], asked
    members = client.get(f"/api/incidents/{incident_id}").json()["members"]
    expect(row.locator("td").nth(3)).to_have_text(str(members))

    row.locator("a").click()
    expect(page.locator("h1")).to_have_text("payments/error_rate and 1 other metric")
    causes = page.locator("#causes tbody tr")
    expect(causes).to_have_count(2)
    expect(causes.nth(0)).to_contain_text("payments/error_rate")
    expect(causes.nth(0)).to_contain_text("started 4 min before checkout/latency")
    expect(causes.nth(1)).to_contain_text("checkout/latency")
    expect(page.locator("#timeline li.anomaly")).to_have_count(2)
    assert no_horizontal_scroll(page), f"the page scrolls sideways at {layout}"

    # The top cause opens its metric's chart on the incident's time: its anomalies, and
    # not the whole 300 minutes of readings.
    causes.nth(0).locator("a").click()
    expect(page.locator("h1")).to_have_text("error_rate")
    wait_for_chart(page)
    chart = page.locator("#chart")
    anomalies = client.get(f"/api/metrics/{outage.error_rate}/anomalies").json()["anomalies"]
    assert chart.get_attribute("data-markers") == str(len(anomalies))
    assert 20 < int(chart.get_attribute("data-readings") or 0) < 300
    page.go_back()  # to the incident, which the screenshot shows when the test ends
    expect(page.locator("h1")).to_have_text("payments/error_rate and 1 other metric")

    # A verdict on an anomaly, from the incident's page.
    first = page.locator("#incident-anomalies tbody tr").first
    first.locator("button[data-verdict=false_positive]").click()
    expect(first.locator("button[data-verdict=false_positive]")).to_have_attribute(
        "aria-pressed", "true"
    )
    anomaly_id = first.locator(".feedback").get_attribute("data-anomaly-id")
    assert client.get(f"/api/anomalies/{anomaly_id}").json()["feedback"] == "false_positive"

    page.click("#acknowledge")
    expect(page.locator("#incident-state")).to_have_text("acknowledged")
    expect(page.locator("#incident-status .success")).to_contain_text("Acknowledged")
    expect(page.locator("#acknowledge")).to_be_disabled()
    expect(page.locator("#timeline li.acknowledged")).to_have_count(1)
    assert client.get(f"/api/incidents/{incident_id}").json()["acknowledged_at"] is not None
    page.click("#resolve")
    expect(page.locator("#incident-state")).to_have_text("resolved")
    expect(page.locator("#resolve")).to_be_disabled()
    expect(page.locator("#timeline li.resolved")).to_contain_text("resolved by tester")
    expect(page.locator("main")).not_to_contain_text("null")  # what a page leaves out
    assert client.get(f"/api/incidents/{incident_id}").json()["status"] == "resolved"

    assert console.unexpected() == []


@pytest.mark.slow
def test_an_incident_a_window_made_later_emptied_says_a_maintenance_window_muted_it(
    open_dashboard: Callable[..., tuple[Page, Console]],
    incident: tuple[httpx.Client, Outage, str],
    store: Repositories,
) -> None:
    """A window made later over every anomaly of an open incident (through the API, its
    reach applied by the worker) resolves it by 'maintenance': the list and the incident's
    page say a maintenance window muted them, not that their metrics were deleted."""
    client, _, incident_id = incident
    key = client.headers["X-API-Key"]
    opened = client.get(f"/api/incidents/{incident_id}").json()
    starts = datetime.fromisoformat(opened["started_at"].replace("Z", "+00:00"))
    window = client.post(
        "/api/maintenance-windows",
        json={
            "start": (starts - timedelta(hours=1)).isoformat(),
            "end": datetime.now(UTC).isoformat(),
            "reason": "failover drill",
        },
    )
    assert window.status_code == 201, window.text
    wait_for_reach(store, window.json()["id"])
    resolved = client.get(f"/api/incidents/{incident_id}").json()
    assert (resolved["status"], resolved["resolved_by"], resolved["members"]) == (
        "resolved",
        "maintenance",
        0,
    )
    title = "no anomalies left (a maintenance window made later covers them)"

    page, console = open_dashboard(key, "#/incidents")
    row = page.locator(f"tr[data-incident='{incident_id}']")
    expect(row.locator(".badge")).to_have_text("resolved")
    expect(row).to_have_attribute("title", title)  # what hovering the row says
    expect(row.locator(".top-cause")).to_have_text("–")
    row.locator("a").click()
    expect(page.locator("h1")).to_have_text(title)
    expect(page.locator(".incident-facts")).to_contain_text(
        "0 anomalies left: muted by a maintenance window"
    )
    expect(page.locator(".incident-facts")).not_to_contain_text("deleted")
    expect(page.locator("main")).to_contain_text(
        "No anomalies left: a maintenance window made later covers every one."
    )
    expect(page.locator("#timeline li.resolved")).to_have_text(
        re.compile("resolved: a maintenance window made later covers every anomaly it held$")
    )
    expect(page.locator("#resolve")).to_be_disabled()
    expect(page.locator("#incident-anomalies tbody tr")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("null")
    assert console.unexpected() == []


@pytest.mark.slow
def test_another_users_incident_is_not_found(
    open_dashboard: Callable[..., tuple[Page, Console]],
    incident: tuple[httpx.Client, Outage, str],
    make_user: Callable[..., tuple[User, str]],
) -> None:
    _, _, incident_id = incident
    _, other_key = make_user("intruder")
    page, console = open_dashboard(other_key, f"#/incidents/{incident_id}")
    console.allowed = {404}
    expect(page.locator("h1")).to_have_text("Incident not found")
    page.click("text=Back to your incidents")
    expect(page.locator("main")).to_contain_text("No incidents yet")
    assert console.unexpected() == []
