"""The Celery worker: `celery -A worker.celery_app:app worker` (and `beat`, `flower`)."""
