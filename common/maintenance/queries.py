"""Maintenance windows' Cypher.

Written by the rules of every query module (see common.graph.queries): the Cypher
subset both Neo4j 5 and FalkorDB run, values only through $parameters, every write one
statement, times as epoch milliseconds, scalar columns only. A weekly schedule is kept as
scalars: its days as one comma-separated string, its times as "HH:MM".
"""

_WINDOW_COLUMNS = """
RETURN w.id AS id, w.service_id AS service_id, w.metric_id AS metric_id,
       w.starts_at AS starts_at, w.ends_at AS ends_at, w.weekly_days AS weekly_days,
       w.weekly_start AS weekly_start, w.weekly_end AS weekly_end, w.time_zone AS time_zone,
       w.reason AS reason, w.created_at AS created_at, w.updated_at AS updated_at
"""

# The service or metric a window names must be the owner's: one row, found or not.
TARGET_OWNED = """
MATCH (u:User {id: $owner_id})
OPTIONAL MATCH (u)-[:OWNS]->(s:Service {id: $service_id})
OPTIONAL MATCH (u)-[:OWNS]->(:Service)-[:MONITORS]->(m:Metric {id: $metric_id})
RETURN ($service_id IS NULL OR s IS NOT NULL) AND ($metric_id IS NULL OR m IS NOT NULL)
       AS owned
"""

# At most $max windows an owner: every judgement of a metric reads the ones that apply.
# No row back: the owner has $max already (or does not exist).
CREATE_WINDOW = (
    """
MATCH (u:User {id: $owner_id})
OPTIONAL MATCH (u)-[:HAS_MAINTENANCE_WINDOW]->(other:MaintenanceWindow)
WITH u, count(other) AS windows
WHERE windows < $max
CREATE (u)-[:HAS_MAINTENANCE_WINDOW]->(w:MaintenanceWindow {
    id: $id, created_at: $created_at, updated_at: $created_at})
SET w.service_id = $service_id, w.metric_id = $metric_id, w.starts_at = $starts_at,
    w.ends_at = $ends_at, w.weekly_days = $weekly_days, w.weekly_start = $weekly_start,
    w.weekly_end = $weekly_end, w.time_zone = $time_zone, w.reason = $reason
"""
    + _WINDOW_COLUMNS
)

_OWNED_WINDOW = """
MATCH (:User {id: $owner_id})-[:HAS_MAINTENANCE_WINDOW]->(w:MaintenanceWindow {id: $window_id})
"""

GET_WINDOW = _OWNED_WINDOW + _WINDOW_COLUMNS

# Every field at once: the service merges a PATCH into the stored window and checks the
# whole before it writes.
UPDATE_WINDOW = (
    _OWNED_WINDOW
    + """
SET w.service_id = $service_id, w.metric_id = $metric_id, w.starts_at = $starts_at,
    w.ends_at = $ends_at, w.weekly_days = $weekly_days, w.weekly_start = $weekly_start,
    w.weekly_end = $weekly_end, w.time_zone = $time_zone, w.reason = $reason,
    w.updated_at = $now
"""
    + _WINDOW_COLUMNS
)

DELETE_WINDOW = (
    _OWNED_WINDOW
    + """
DETACH DELETE w
RETURN count(*) AS deleted
"""
)

LIST_WINDOWS = (
    """
MATCH (:User {id: $owner_id})-[:HAS_MAINTENANCE_WINDOW]->(w:MaintenanceWindow)
"""
    + _WINDOW_COLUMNS
    + "ORDER BY w.created_at, w.id"
)

# The owner's windows that apply to a metric (its own, its service's, the owner's "all")
# and may cover some of [$start, $end): one-off or weekly, bounded by starts_at/ends_at.
WINDOWS_OF_METRIC = (
    """
MATCH (:User {id: $owner_id})-[:HAS_MAINTENANCE_WINDOW]->(w:MaintenanceWindow)
WHERE (w.metric_id = $metric_id OR w.service_id = $service_id
       OR (w.metric_id IS NULL AND w.service_id IS NULL))
  AND (w.ends_at IS NULL OR w.ends_at > $start) AND (w.starts_at IS NULL OR w.starts_at < $end)
"""
    + _WINDOW_COLUMNS
    + "ORDER BY w.created_at, w.id"
)

# Every window of these owners (at most MAINTENANCE_WINDOWS_MAX each), for a sweep's batch:
# which of its metrics each applies to is decided in Python (maintenance.service.applies).
WINDOWS_OF_OWNERS = (
    """
UNWIND $owner_ids AS owner_id
MATCH (:User {id: owner_id})-[:HAS_MAINTENANCE_WINDOW]->(w:MaintenanceWindow)
"""
    + """
WITH owner_id, w
"""
    + _WINDOW_COLUMNS
    + ", owner_id AS owner_id ORDER BY w.created_at, w.id"
)

# A window made, changed or deleted over readings a sweep already judged changes what the
# metric's detector may learn from (common.anomalies.lessons): each metric a target covers
# (t.metric_id, or t.service_id's, or every one of the owner's) that was judged at or after
# t.from is marked as a late append marks it (common.metrics.queries, _MARK_LATE), so the next
# sweep rebuilds its state from its history with the windows as they are now. In batches
# of $batch metrics in id order after $after (an owner-wide window marks every metric of
# the owner: no statement holds the writer for all of them); `last` is where to go on.
RELEARN_UNDER_WINDOWS = """
UNWIND $targets AS t
MATCH (:User {id: $owner_id})-[:OWNS]->(s:Service)-[:MONITORS]->(m:Metric)
WHERE (t.metric_id IS NULL OR m.id = t.metric_id)
  AND (t.service_id IS NULL OR s.id = t.service_id)
  AND m.deleting IS NULL AND m.judged_through >= t.from AND m.id > $after
WITH m, min(t.from) AS from
ORDER BY m.id
LIMIT $batch
SET m.late_seq = coalesce(m.late_seq, 0) + 1,
    m.late_from = CASE WHEN m.late_from IS NULL OR from < m.late_from
                       THEN from ELSE m.late_from END
RETURN count(m) AS marked, max(m.id) AS last
"""

# A window made or widened over anomalies already stored mutes them, as if it had been
# there when they were stored: each one in [$starts[k], $ends[k]) of a metric the window
# covers is marked muted and leaves the open incident that holds it (muted anomalies are
# in no incident). One an incident already resolved holds is left as it was: the record
# of what people were told and resolved. One index range per metric, [$from, $to) around
# every span (a weekly window's spans are picked inside it: not a lookup per metric and
# span). The owner's lock first, as every statement changing the owner's incidents takes
# it (JOIN_OR_OPEN_INCIDENT). At most $batch anomalies a statement: the caller repeats it
# until fewer are muted (those it leaves, held by a resolved incident, are not counted).
# The index range is `<= $to - 1`, never `< $to`: a strict bound walks every anomaly of
# every metric stamped at $to (see the readings' section of common/metrics/queries.py).
MUTE_IN_SPANS = """
MATCH (u:User {id: $owner_id})
SET u.incident_seq = coalesce(u.incident_seq, 0) + 1
WITH u
MATCH (u)-[:OWNS]->(s:Service)-[:MONITORS]->(m:Metric)
WHERE ($metric_id IS NULL OR m.id = $metric_id)
  AND ($service_id IS NULL OR s.id = $service_id) AND m.deleting IS NULL
MATCH (a:Anomaly)
WHERE a.metric_id = m.id AND a.timestamp >= $from AND a.timestamp <= $to - 1
  AND coalesce(a.muted, false) = false
  AND any(k IN range(0, size($starts) - 1)
          WHERE $starts[k] <= a.timestamp AND a.timestamp < $ends[k])
OPTIONAL MATCH (i:Incident)-[held:INCLUDES]->(a)
WITH a, collect(i.status) AS statuses,
     collect(CASE WHEN i.status = 'open' THEN held END) AS links
WHERE NOT 'resolved' IN statuses
WITH a, links
LIMIT $batch
FOREACH (link IN links | DELETE link)
SET a.muted = true
RETURN count(a) AS muted
"""
