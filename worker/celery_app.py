"""The Celery app of the worker, beat and Flower, configured from Settings.

celery -A worker.celery_app:app worker --loglevel=INFO
celery -A worker.celery_app:app beat
celery -A worker.celery_app:app flower
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

from common.collector import freeze_startup_objects
from common.embedded import resolve_urls
from common.queue import celery_config
from common.settings import Settings, get_settings
from worker import resources


def create_celery(settings: Settings) -> Celery:
    app = Celery("neonomaly", include=["worker.tasks"])
    app.conf.update(celery_config(settings, resolve_urls(settings).redis_url))
    return app


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _start_pool_process(**_: Any) -> None:
    resources.open_resources()
    # A pool process lives for many sweeps; its full collections walked all of this.
    freeze_startup_objects()


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _close_process_clients(**_: Any) -> None:
    resources.close_resources()


app = create_celery(get_settings())
