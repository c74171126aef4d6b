"""Incident changes to webhook deliveries, and each delivery's attempts, at least once.

How a change reaches a receiver:
 1. Building incidents (or resolving one) bumps the incident's `revision` in the graph.
 2. The incident sweep (`dispatch.notify_incidents`) reads incidents whose revision is
    ahead of `notified_revision` (an outbox in the graph), creates one delivery per channel
    of the owner, queues a delivery task for each, and only then marks the revision
    notified. A crash in between repeats the step, and a delivery's id is derived from
    (channel, event), so a repeat creates nothing twice.
 3. The delivery task (`attempts.attempt_delivery`) POSTs the signed payload. A failure is
    retried with backoff (WEBHOOK_RETRY_FIRST_SECONDS doubling up to
    WEBHOOK_RETRY_MAX_SECONDS) until WEBHOOK_RETRY_FOR_SECONDS after the delivery was
    created, then it is marked failed. A lease makes sure one attempt at a time runs for a
    delivery.
 4. A delivery whose retry was lost (a worker died holding it) is found by the sweep in
    the due set and queued again.

Receivers may see an event twice (at least once): `event_id` is stable, dedup on it.
Delivery records live in Redis for JOB_RECORD_TTL_SECONDS (`delivery_log`); each channel
lists its last WEBHOOK_DELIVERIES_KEPT. Channels live in the graph (`repository`).
"""
