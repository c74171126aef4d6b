"""Maintenance windows' Cypher.

Written by the rules of every query module (see common.graph.queries): the Cypher
subset both Neo4j 5 and FalkorDB run, values only through $parameters, every write one
statement, times as epoch milliseconds, scalar columns only. A weekly schedule is kept as
scalars: its days as one comma-separated string, its times as "HH:MM".

A window's reach into the past. A window made, changed (what it covers, not its reason
alone) or deleted reaches readings already judged: the anomalies stored in what it covers
now are muted, and the metrics it covered before or covers now are marked for a detector
rebuild (common.maintenance.reach). That is a worker task, not part of the request, so
the statement that makes the change also says what is left to do:
 - `reach_seq`, a generation bumped by each such change; the task that applied generation
   N sets `reach_done` to N. reach_seq > reach_done: still to apply (the API shows it as
   `reach_pending`), and a periodic sweep queues the task again for windows pending since
   long before (PENDING_REACHES: a worker died, or the queue was unreachable).
 - `reach_relearn`, what the window covered before each change, one string an entry:
   "<generation>|metric|<id>|<from>", "...|service|<id>|<from>" or "...|all||<from>"
   (from: its start, epoch ms): once the window has changed again, only this says which
   metrics learnt without the readings it covered then.
 - A deleted window stays as a tombstone, (:User)-[:HAD_MAINTENANCE_WINDOW]->(w) with
   `deleted_at`, which no list, lookup or judgement sees, until its reach is applied
   (FINISH_REACH deletes it then).
Every change takes the owner's lock first (as every statement changing the owner's
incidents takes it: JOIN_OR_OPEN_INCIDENT) and bumps the owner's `windows_seq`, which an
anomaly's write checks in its own statement (common.anomalies.queries,
SAVE_ANOMALIES_UNDER_WINDOWS): an anomaly judged against the windows as they were before a
change is never stored unmuted after it.
"""

_WINDOW_COLUMNS = """
RETURN w.id AS id, w.service_id AS service_id, w.metric_id AS metric_id,
       w.starts_at AS starts_at, w.ends_at AS ends_at, w.weekly_days AS weekly_days,
       w.weekly_start AS weekly_start, w.weekly_end AS weekly_end, w.time_zone AS time_zone,
       w.reason AS reason, w.created_at AS created_at, w.updated_at AS updated_at,
       coalesce(w.reach_seq, 0) > coalesce(w.reach_done, 0) AS reach_pending
"""

_OWNER_LOCK = """
SET u.incident_seq = coalesce(u.incident_seq, 0) + 1,
    u.windows_seq = coalesce(u.windows_seq, 0) + 1
"""

# What w covers as it is stored, as the reach_relearn entry of generation reach_seq + 1.
_COVERED_BEFORE = """
toString(coalesce(w.reach_seq, 0) + 1) + '|' +
CASE WHEN w.metric_id IS NOT NULL THEN 'metric|' + w.metric_id
     WHEN w.service_id IS NOT NULL THEN 'service|' + w.service_id
     ELSE 'all|' END + '|' + toString(coalesce(w.starts_at, $min)) AS covered_before
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
# No row back: the owner has $max already (or does not exist). Generation 1 of its reach.
CREATE_WINDOW = (
    """
MATCH (u:User {id: $owner_id})
OPTIONAL MATCH (u)-[:HAS_MAINTENANCE_WINDOW]->(other:MaintenanceWindow)
WITH u, count(other) AS windows
WHERE windows < $max
"""
    + _OWNER_LOCK
    + """
CREATE (u)-[:HAS_MAINTENANCE_WINDOW]->(w:MaintenanceWindow {
    id: $id, created_at: $created_at, updated_at: $created_at,
    reach_seq: 1, reach_done: 0, reach_requested_at: $created_at})
SET w.service_id = $service_id, w.metric_id = $metric_id, w.starts_at = $starts_at,
    w.ends_at = $ends_at, w.weekly_days = $weekly_days, w.weekly_start = $weekly_start,
    w.weekly_end = $weekly_end, w.time_zone = $time_zone, w.reason = $reason
"""
    + _WINDOW_COLUMNS
)

_OWNED_WINDOW = """
MATCH (u:User {id: $owner_id})-[:HAS_MAINTENANCE_WINDOW]->(w:MaintenanceWindow {id: $window_id})
"""

GET_WINDOW = _OWNED_WINDOW + _WINDOW_COLUMNS

# Every field at once: the service merges a PATCH into the stored window and checks the
# whole before it writes. A change of what it covers is a new generation of its reach,
# with what it covered before kept to be relearnt; a new reason alone is not.
UPDATE_WINDOW = (
    _OWNED_WINDOW
    + _OWNER_LOCK
    + """
WITH w, NOT (coalesce(w.service_id, '') = coalesce($service_id, '')
             AND coalesce(w.metric_id, '') = coalesce($metric_id, '')
             AND coalesce(w.starts_at, $min) = coalesce($starts_at, $min)
             AND coalesce(w.ends_at, $min) = coalesce($ends_at, $min)
             AND coalesce(w.weekly_days, '') = coalesce($weekly_days, '')
             AND coalesce(w.weekly_start, '') = coalesce($weekly_start, '')
             AND coalesce(w.weekly_end, '') = coalesce($weekly_end, '')
             AND coalesce(w.time_zone, '') = coalesce($time_zone, '')) AS reaches,
"""
    + _COVERED_BEFORE
    + """
SET w.reach_relearn = CASE WHEN reaches THEN coalesce(w.reach_relearn, []) + covered_before
                           ELSE w.reach_relearn END,
    w.reach_seq = coalesce(w.reach_seq, 0) + CASE WHEN reaches THEN 1 ELSE 0 END,
    w.reach_done = coalesce(w.reach_done, 0),
    w.reach_requested_at = CASE WHEN reaches THEN $now ELSE w.reach_requested_at END
SET w.service_id = $service_id, w.metric_id = $metric_id, w.starts_at = $starts_at,
    w.ends_at = $ends_at, w.weekly_days = $weekly_days, w.weekly_start = $weekly_start,
    w.weekly_end = $weekly_end, w.time_zone = $time_zone, w.reason = $reason,
    w.updated_at = $now
"""
    + _WINDOW_COLUMNS
)

# Gone for every list, lookup and judgement at once; a tombstone until its reach (the
# readings it covered, learnt from again) is applied.
DELETE_WINDOW = (
    """
MATCH (u:User {id: $owner_id})-[held:HAS_MAINTENANCE_WINDOW]->
      (w:MaintenanceWindow {id: $window_id})
"""
    + _OWNER_LOCK
    + """
WITH u, held, w,
"""
    + _COVERED_BEFORE
    + """
SET w.reach_relearn = coalesce(w.reach_relearn, []) + covered_before,
    w.reach_seq = coalesce(w.reach_seq, 0) + 1, w.reach_done = coalesce(w.reach_done, 0),
    w.reach_requested_at = $now, w.deleted_at = $now
DELETE held
CREATE (u)-[:HAD_MAINTENANCE_WINDOW]->(w)
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

# Which generation of the owner's windows a judgement reads (read before the windows: a
# change between the two reads makes the anomalies' write try again, never miss one).
WINDOWS_SEQ = """
MATCH (u:User {id: $owner_id})
RETURN coalesce(u.windows_seq, 0) AS windows_seq
"""

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

# A window (or its tombstone) with what its reach has left to do.
REACH_OF_WINDOW = (
    """
MATCH (u:User)-[:HAS_MAINTENANCE_WINDOW|HAD_MAINTENANCE_WINDOW]->
      (w:MaintenanceWindow {id: $window_id})
"""
    + _WINDOW_COLUMNS
    + """, u.id AS owner_id, w.deleted_at IS NOT NULL AS deleted,
       coalesce(w.reach_seq, 0) AS reach_seq, coalesce(w.reach_done, 0) AS reach_done,
       coalesce(w.reach_relearn, []) AS relearn
"""
)

# The metrics of the owner a window's target covers ($metric_id, or $service_id's, or all),
# with how far sweeps judged each: one read a target, in id order, whatever the reach then
# writes in batches of them (so its writes never walk the owner's metrics again).
COVERED_METRICS = """
MATCH (:User {id: $owner_id})-[:OWNS]->(s:Service)-[:MONITORS]->(m:Metric)
WHERE ($metric_id IS NULL OR m.id = $metric_id)
  AND ($service_id IS NULL OR s.id = $service_id) AND m.deleting IS NULL
RETURN m.id AS id, m.judged_through AS judged_through
ORDER BY m.id
"""

# A window made, changed or deleted over readings a sweep already judged changes what the
# metric's detector may learn from (common.anomalies.lessons): each metric k.id judged at
# or after k.from, or held by a sweep's batch now (k.held: it may have read the windows
# before the change and judge into them), is marked as a late append marks it
# (common.metrics.queries, _MARK_LATE), so the next sweep rebuilds its state from its
# history with the windows as they are now. The bumped late_seq keeps the mark through
# the holding batch's SAVE_SCAN_MARKS. A held metric is marked from no later than the
# reading after its judged_through: its batch stores anomalies up to wherever it judges,
# and the rebuild must store those after (anomalies are stored once a reading, so what
# both store is stored once). The caller names at most WRITE_BATCH metrics a statement.
RELEARN_METRICS = """
UNWIND $marks AS k
MATCH (m:Metric {id: k.id})
WHERE m.deleting IS NULL AND (k.held OR m.judged_through >= k.from)
WITH m, CASE WHEN m.judged_through IS NOT NULL AND m.judged_through + 1 < k.from
             THEN m.judged_through + 1 ELSE k.from END AS relearn_from
SET m.late_seq = coalesce(m.late_seq, 0) + 1,
    m.late_from = CASE WHEN m.late_from IS NULL OR relearn_from < m.late_from
                       THEN relearn_from ELSE m.late_from END
RETURN count(m) AS marked
"""

# A window made or widened over anomalies already stored mutes them, as if it had been
# there when they were stored: each one in [$starts[k], $ends[k]) of the metrics
# $metric_ids (at most WRITE_BATCH, of the window's owner) is marked muted and leaves the
# open incident that holds it (muted anomalies are in no incident), which is flagged
# `members_muted_by` the window ($window_id) for RESOLVE_OR_UPDATE_MUTED_INCIDENTS. One an
# incident already resolved holds is left as it was: the record of what people were told
# and resolved. One index range
# per metric, [$from, $to) around the spans (a weekly window's spans are picked inside
# it: not a lookup per metric and span). The owner's lock first, as every statement
# changing the owner's incidents takes it (JOIN_OR_OPEN_INCIDENT). At most $batch
# anomalies a statement, taken before anything is grouped (a collect before the LIMIT
# went through every anomaly left to mute); the caller repeats it until fewer are muted
# (those it leaves, held by a resolved incident, are not counted), halving the range
# where a batch is full (MaintenanceRepository.mute): the range still holds the anomalies
# muted before, which each statement walks again.
# The index range is `<= $to - 1`, never `< $to`: a strict bound walks every anomaly of
# every metric stamped at $to (see the readings' section of common/metrics/queries.py).
MUTE_IN_SPANS = """
MATCH (u:User {id: $owner_id})
SET u.incident_seq = coalesce(u.incident_seq, 0) + 1
WITH u
UNWIND $metric_ids AS metric_id
MATCH (a:Anomaly)
WHERE a.metric_id = metric_id AND a.timestamp >= $from AND a.timestamp <= $to - 1
  AND coalesce(a.muted, false) = false
  AND any(k IN range(0, size($starts) - 1)
          WHERE $starts[k] <= a.timestamp AND a.timestamp < $ends[k])
OPTIONAL MATCH (resolved:Incident {status: 'resolved'})-[:INCLUDES]->(a)
WITH a, resolved
WHERE resolved IS NULL
WITH a
LIMIT $batch
OPTIONAL MATCH (i:Incident {status: 'open'})-[held:INCLUDES]->(a)
WITH a, collect(held) AS links, collect(i) AS emptied
FOREACH (link IN links | DELETE link)
FOREACH (i IN emptied | SET i.members_muted_by = $window_id)
SET a.muted = true
RETURN count(a) AS muted
"""

# The open incidents the window's mute took members from (flagged `members_muted_by` the
# window, an index lookup: not a walk of the owner's incidents, resolved ones included,
# which every reach of every window of the owner made), once the mute is done. Each is a
# change people are told about once (revision + 1), however many of the mute's statements
# took members from it:
#  - left with none, it is resolved at once, by 'maintenance' (else it stayed open, empty,
#    until INCIDENT_RESOLVE_SECONDS resolved it as quiet): an incident.resolved webhook,
#    unless people were never told of it (notified_revision 0): then there is nothing to
#    tell, and it is marked notified;
#  - left with some, it stays open with fewer members: an incident.updated webhook (an
#    incident.opened one if people were not told of it yet), so that subscribers do not
#    keep the count from before the window. Its last_joined_at stays: nothing joined.
# At most $batch incidents a statement (the caller repeats it until fewer come back: a
# window over an owner's whole past may touch thousands). The flag is cleared on each,
# open or not, so the next statement takes the next ones. It is written by the mute and read here in
# separate statements, so a task that dies between them leaves it, and the task run again
# (its mute finding nothing left to mute) settles them; an incident flagged by two
# windows' mutes carries the later one's, whose reach then answers for both. The owner's
# lock first (JOIN_OR_OPEN_INCIDENT): a join that commits before is counted as a member,
# one after finds the incident resolved.
RESOLVE_OR_UPDATE_MUTED_INCIDENTS = """
MATCH (u:User {id: $owner_id})
SET u.incident_seq = coalesce(u.incident_seq, 0) + 1
WITH u
MATCH (i:Incident {members_muted_by: $window_id})
WITH i
LIMIT $batch
SET i.members_muted_by = null
WITH i, i.status = 'open' AS was_open,
     size([(i)-[:INCLUDES]->(member:Anomaly) | member.id]) = 0 AS emptied,
     i.revision + 1 AS revision
FOREACH (_ IN CASE WHEN was_open THEN [1] ELSE [] END |
  SET i.revision = revision,
      i.last_change = CASE WHEN emptied THEN 'resolved' ELSE 'updated' END,
      i.status = CASE WHEN emptied THEN 'resolved' ELSE i.status END,
      i.resolved_at = CASE WHEN emptied THEN $now ELSE i.resolved_at END,
      i.resolved_by = CASE WHEN emptied THEN 'maintenance' ELSE i.resolved_by END,
      i.notified_revision = CASE WHEN emptied AND i.notified_revision = 0 THEN revision
                                 ELSE i.notified_revision END)
RETURN i.id AS id, was_open, emptied
"""

# The reach of generation $seq applied: reach_done moves up to it and the relearn entries
# of generations up to it go (later ones stay, with their own task queued). A tombstone
# whose every generation is applied is deleted. The owner's lock first: a change of the
# window commits before (its entry then has a later generation) or after.
FINISH_REACH = """
MATCH (u:User)-[:HAS_MAINTENANCE_WINDOW|HAD_MAINTENANCE_WINDOW]->
      (w:MaintenanceWindow {id: $window_id})
SET u.incident_seq = coalesce(u.incident_seq, 0) + 1
WITH w, [entry IN coalesce(w.reach_relearn, [])
         WHERE toInteger(split(entry, '|')[0]) > $seq] AS later,
     CASE WHEN coalesce(w.reach_done, 0) < $seq THEN $seq ELSE w.reach_done END AS done
SET w.reach_done = done, w.reach_relearn = CASE WHEN size(later) = 0 THEN null ELSE later END,
    w.reach_requested_at = CASE WHEN done >= coalesce(w.reach_seq, 0) THEN null
                                ELSE w.reach_requested_at END
WITH w, done
WHERE w.deleted_at IS NOT NULL AND done >= w.reach_seq
DETACH DELETE w
"""

# Windows (and tombstones) whose reach was asked for before $cutoff and is not applied yet:
# its task was lost (a worker died, the queue was down). Each is asked for again at $now,
# so the next look passes it by while the task it queues runs. At most $limit at a time.
# Only windows with a reach asked for carry `reach_requested_at` (FINISH_REACH clears it),
# so the look is an index range over those, not a walk of every owner's windows (100,000
# windows: 29-104 ms a look). One asked for and applied before that rule (its time still
# set) is cleared here when the look comes to it.
PENDING_REACHES = """
MATCH (w:MaintenanceWindow)
WHERE w.reach_requested_at <= $cutoff
WITH w, coalesce(w.reach_seq, 0) > coalesce(w.reach_done, 0) AS pending
ORDER BY w.reach_requested_at, w.id
LIMIT $limit
SET w.reach_requested_at = CASE WHEN pending THEN $now ELSE null END
WITH w, pending
WHERE pending
RETURN w.id AS id
"""
