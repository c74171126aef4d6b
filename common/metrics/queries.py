"""Metrics' and readings' Cypher: a service's metrics, each metric's chain of readings.

Written by the rules of every query module (see common.graph.queries): the Cypher
subset both Neo4j 5 and FalkorDB run, values only through $parameters, every write one
statement, times as epoch milliseconds, scalar columns only.
"""

_METRIC_COLUMNS = """
RETURN m.id AS id, m.name AS name, m.description AS description, m.service_id AS service_id,
       m.created_at AS created_at, m.label_names AS label_names, m.label_values AS label_values,
       latest.id AS latest_id, latest.timestamp AS latest_timestamp, latest.value AS latest_value,
       m.judged_at AS judged_at, m.judged_through AS judged_through, m.scan_lag_ms AS scan_lag_ms,
       m.rebuild_waiting_since AS rebuild_waiting_since, m.scan_note AS scan_note,
       m.detection AS detection
"""

# Labels are two lists of strings, names sorted (Neo4j has no map properties); none: unset.
# No row: the service is not the owner's, or is being deleted. clashes > 0: the name is
# taken in that service. The service is locked (SET) before it is read again: a delete of it
# that committed first is seen (deleting), one that comes after finds this metric.
_CREATE_IN_SERVICE = """
MATCH (:User {id: $owner_id})-[:OWNS]->(s:Service {id: $service_id})
SET s.metrics_changed_at = $created_at
WITH s.id AS service_id, owned
MATCH (s:Service {id: service_id})
WHERE s.deleting IS NULL
OPTIONAL MATCH (s)-[:MONITORS]->(existing:Metric {name: $name})
WITH s, owned, count(existing) AS clashes
FOREACH (_ IN CASE WHEN clashes = 0 AND owned < $max_metrics THEN [1] ELSE [] END |
  CREATE (s)-[:MONITORS]->(:Metric {id: $id, name: $name, description: $description,
                                    service_id: $service_id, created_at: $created_at,
                                    label_names: $label_names, label_values: $label_values}))
RETURN clashes, owned
"""

CREATE_METRIC = "WITH 0 AS owned" + _CREATE_IN_SERVICE

# Within the owner's metric limit: the owner is locked first (SET), so on Neo4j two creations
# for one owner queue there and each counts the other's metric; then the service, as
# CREATE_METRIC locks it. owned >= $max_metrics: the limit is reached, nothing is created.
CREATE_METRIC_WITHIN_LIMIT = (
    """
MATCH (u:User {id: $owner_id})
SET u.metrics_changed_at = $created_at
WITH u
OPTIONAL MATCH (u)-[:OWNS]->(:Service)-[:MONITORS]->(counted:Metric)
WITH count(counted) AS owned
"""
    + _CREATE_IN_SERVICE
)

# The metrics an ingest request names by id, if they are the owner's, each with its newest
# reading (where its readings are appended): read when an append guessed a metric's readings
# were its tail and they were not, or for a series without readings. Each is found by its
# id's index and its owner checked after: with the owner's id in the pattern, FalkorDB
# starts at the user and walks all the owner's metrics for every id (1,000 ids of an owner
# of 1,000 metrics: 1.3 s against 40 ms).
METRICS_BY_ID = """
UNWIND $metric_ids AS metric_id
MATCH (m:Metric {id: metric_id})<-[:MONITORS]-(:Service)<-[:OWNS]-(owner:User)
WITH m, owner
WHERE owner.id = $owner_id AND m.deleting IS NULL
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
RETURN m.id AS id, latest.id AS latest_id, latest.timestamp AS latest_timestamp
"""

# The metrics an ingest request names by service (id, or name when the id is null) and
# metric name: a row per service found and name (metric columns null when it has none by that
# name). Two services with one name give two rows: the caller says that is ambiguous. Metrics
# are found by their (service_id, name) index, not by walking a service's metrics.
METRICS_BY_NAME = """
UNWIND range(0, size($service_ids) - 1) AS k
WITH k, $service_ids[k] AS service_id, $service_names[k] AS service_name
MATCH (:User {id: $owner_id})-[:OWNS]->(s:Service)
WHERE (s.id = service_id OR (service_id IS NULL AND s.name = service_name))
  AND s.deleting IS NULL
UNWIND $metric_names[k] AS name
OPTIONAL MATCH (m:Metric {service_id: s.id, name: name})
WHERE m.deleting IS NULL
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
RETURN k AS service, s.id AS service_id, name, m.id AS id, latest.id AS latest_id,
       latest.timestamp AS latest_timestamp
"""

# Metrics an ingest request names and the owner does not have yet, created in request order
# while the owner has fewer than $max_metrics; a service named but missing is created with
# the first of its metrics that is. Locks as CREATE_METRIC_WITHIN_LIMIT: the owner, then each
# service. $wanted: {index, service_id, service_name, new_service_id, id, name, label_names,
# label_values}; a new service's rows share one new_service_id (FalkorDB may re-run ON CREATE
# SET for a MERGE repeated in one FOREACH: with one id that changes nothing).
# A row per wanted metric: its id (null: refused by the limit, or the service is ambiguous,
# gone or being deleted), whether it was created here, and the owner's metric count before.
CREATE_MISSING_METRICS = """
MATCH (u:User {id: $owner_id})
SET u.metrics_changed_at = $now
WITH u
OPTIONAL MATCH (u)-[:OWNS]->(:Service)-[:MONITORS]->(counted:Metric)
WITH u, count(counted) AS owned
UNWIND $wanted AS w
OPTIONAL MATCH (u)-[:OWNS]->(found:Service)
WHERE found.id = w.service_id OR (w.service_id IS NULL AND found.name = w.service_name)
WITH u, owned, w, collect(found) AS services
WITH u, owned, w, size(services) AS matches, services[0] AS s
OPTIONAL MATCH (existing:Metric {service_id: s.id, name: w.name})
WITH u, owned, w, matches, s, existing
ORDER BY w.index
WITH u, owned, collect({w: w, s: s, matches: matches, existing: existing}) AS rows
WITH u, owned, rows,
     [r IN rows WHERE r.existing IS NULL AND r.matches <= 1
                  AND (r.matches = 1 OR r.w.service_id IS NULL)
                  AND (r.s IS NULL OR r.s.deleting IS NULL)] AS missing
WITH u, owned, rows,
     missing[0..CASE WHEN $max_metrics > owned THEN $max_metrics - owned ELSE 0 END] AS allowed
FOREACH (r IN allowed |
  FOREACH (s IN CASE WHEN r.s IS NULL THEN [] ELSE [r.s] END |
    SET s.metrics_changed_at = $now
    CREATE (s)-[:MONITORS]->(:Metric {id: r.w.id, name: r.w.name, service_id: s.id,
                                      created_at: $now, label_names: r.w.label_names,
                                      label_values: r.w.label_values}))
  FOREACH (_ IN CASE WHEN r.s IS NULL THEN [1] ELSE [] END |
    MERGE (u)-[:OWNS]->(s:Service {name: r.w.service_name})
    ON CREATE SET s.id = r.w.new_service_id, s.created_at = $now
    SET s.metrics_changed_at = $now
    CREATE (s)-[:MONITORS]->(:Metric {id: r.w.id, name: r.w.name, service_id: s.id,
                                      created_at: $now, label_names: r.w.label_names,
                                      label_values: r.w.label_values})))
WITH owned, rows, [r IN allowed | r.w.index] AS created
UNWIND rows AS r
RETURN r.w.index AS wanted, r.matches AS services,
       coalesce(CASE WHEN r.existing.deleting IS NULL THEN r.existing.id END,
                CASE WHEN r.w.index IN created THEN r.w.id END) AS id,
       r.w.index IN created AS created, owned
"""

# Found by the id's index, the owner checked after (as METRICS_BY_ID, for its reason: each
# single-metric append reads this, and an owner of 50,000 metrics would have it walk them all).
GET_METRIC = (
    """
MATCH (m:Metric {id: $metric_id})<-[:MONITORS]-(:Service)<-[:OWNS]-(owner:User)
WITH m, owner
WHERE owner.id = $owner_id AND m.deleting IS NULL
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
"""
    + _METRIC_COLUMNS
)

FIND_METRIC_BY_NAME = (
    """
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service {id: $service_id})-[:MONITORS]->
      (m:Metric {name: $name})
WHERE m.deleting IS NULL
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
"""
    + _METRIC_COLUMNS
)

LIST_METRICS = (
    """
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service {id: $service_id})-[:MONITORS]->(m:Metric)
WHERE m.deleting IS NULL
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
"""
    + _METRIC_COLUMNS
    + "ORDER BY m.created_at, m.id"
)

# A metric's own detection settings, kept as one JSON string (MetricDetection): a scalar
# property both engines store, read back whole. Found as GET_METRIC finds it. No row: not
# the owner's metric.
SET_METRIC_DETECTION = (
    """
MATCH (m:Metric {id: $metric_id})<-[:MONITORS]-(:Service)<-[:OWNS]-(owner:User)
WITH m, owner
WHERE owner.id = $owner_id
SET m.detection = $detection
WITH m
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
"""
    + _METRIC_COLUMNS
)

# No row: not the owner's metric. clashes > 0: another metric of the service has the name.
UPDATE_METRIC = """
MATCH (:User {id: $owner_id})-[:OWNS]->(s:Service)-[:MONITORS]->(m:Metric {id: $metric_id})
WHERE m.deleting IS NULL
OPTIONAL MATCH (s)-[:MONITORS]->(other:Metric {name: $name})
WHERE other.id <> m.id
WITH m, count(other) AS clashes
FOREACH (_ IN CASE WHEN clashes = 0 THEN [1] ELSE [] END |
  SET m.name = coalesce($name, m.name),
      m.description = CASE WHEN $set_description THEN $description ELSE m.description END)
RETURN clashes
"""

# --- deleting a metric ------------------------------------------------------------------
# In steps, each one short statement, so that deleting a metric of a million readings never
# holds the graph (FalkorDB's one writer, Neo4j's locks) for long against other tenants:
#  1. BEGIN_DELETE_METRIC marks it `deleting`. From then on every read here treats it as
#     gone (404), and appends, anomaly saves and new jobs are refused. It takes the
#     MetricLock, then the metric, in APPEND_READINGS' order: an append holding them
#     commits first (its readings are then deleted with the rest), one that comes after
#     finds the metric deleting and stores nothing.
#  2. What it owns is deleted a batch at a time (common.graph.deletes).
#  3. FINISH_DELETE_METRIC deletes its MetricLock and the metric itself, last.
# A delete cut short (the web process died, say) leaves the metric marked and invisible:
# the next DELETE of it, or the worker's sweep of interrupted deletes, carries it on.
# No row: not the owner's metric (one already marked is: its delete is carried on).
BEGIN_DELETE_METRIC = """
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service)-[:MONITORS]->(m:Metric {id: $metric_id})
OPTIONAL MATCH (held:MetricLock {metric_id: $metric_id})
FOREACH (l IN CASE WHEN held IS NULL THEN [] ELSE [held] END | SET l.deleting = true)
SET m.deleting = true, m.deleting_since = coalesce(m.deleting_since, $now)
RETURN m.id AS id
"""

FINISH_DELETE_METRIC = """
MATCH (m:Metric {id: $metric_id})
WHERE m.deleting
OPTIONAL MATCH (lock:MetricLock {metric_id: $metric_id})
WITH m, collect(lock) AS locks
FOREACH (l IN locks | DELETE l)
DETACH DELETE m
RETURN count(*) AS deleted
"""

# Deletes left unfinished: marked before $before (a delete in progress is left to its caller).
METRICS_BEING_DELETED = """
MATCH (m:Metric)
WHERE m.deleting AND m.deleting_since <= $before
RETURN m.id AS id
ORDER BY m.deleting_since
LIMIT $limit
"""

GET_METRIC_REF = """
MATCH (u:User)-[:OWNS]->(:Service)-[:MONITORS]->(m:Metric {id: $metric_id})
WHERE m.deleting IS NULL
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
RETURN m.id AS id, m.name AS name, m.service_id AS service_id, u.id AS owner_id,
       latest.timestamp AS latest_timestamp
"""

# --- periodic scans (common.scans) -------------------------------------------------------
# A scan judges a metric's readings in time order and writes on the metric how far it got
# (SAVE_SCAN_MARKS): judged_through, the newest reading judged. An append with a reading at
# or before judged_through (late, or back-filled) raises late_seq and lowers late_from to
# its earliest timestamp (_MARK_LATE, in APPEND_READINGS), so the next scan judges it in a
# rebuild of the metric's detector state instead of never.
# The per-metric reads are `CALL { WITH ... }` subqueries: a LIMIT per metric, in the form
# both engines run (FalkorDB has no `CALL (x) { ... }`; Neo4j 5 calls this one deprecated).

# The metrics a sweep looks at: appended since $since (server time, so a late reading with
# an old timestamp counts), with what decides whether a sweep advances or rebuilds its
# state (the compacted boundary: readings compacted before a sweep judged them are judged
# in a rebuild) and how long a rebuild has waited (MARK_REBUILDS_WAITING).
_DUE_COLUMNS = """
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
RETURN m.id AS id, u.id AS owner_id, latest.timestamp AS latest_timestamp,
       m.judged_through AS judged_through, m.late_from AS late_from,
       m.compacted_through AS compacted_through, m.last_append_at AS appended_at,
       m.judged_at AS judged_at, m.rebuild_waiting_since AS rebuild_waiting_since,
       m.detection AS detection
"""
METRICS_DUE = (
    """
MATCH (u:User)-[:OWNS]->(:Service)-[:MONITORS]->(m:Metric)
WHERE m.last_append_at >= $since AND m.deleting IS NULL
"""
    + _DUE_COLUMNS
)

# The same of the metrics an earlier sweep left behind ($ids), whether appended to or not: a
# lookup each. Not `OR m.id IN $ids` in METRICS_DUE: FalkorDB tests such a list item by
# item for every metric, and after a settings change the whole fleet's rebuilds wait there
# (5,000 ids over 20,000 metrics: 0.36 s of CPU; 20,000 ids: past the client's timeout).
METRICS_BEHIND = (
    """
UNWIND $ids AS metric_id
MATCH (u:User)-[:OWNS]->(:Service)-[:MONITORS]->(m:Metric {id: metric_id})
WHERE m.deleting IS NULL
"""
    + _DUE_COLUMNS
)

# Metrics whose state rebuild a sweep left for a later one (SCAN_REBUILD_READINGS): since
# when each waits, at the first sweep that leaves it (w.since: its last append then, so the
# wait is never overstated). A wait is over once a scan judged the metric after it began
# (judged_at, SAVE_SCAN_MARKS's $now, is later): the next wait starts afresh, never before
# that judgement (an append that came after that batch's read and before its marks is
# understated by at most the batch's time).
MARK_REBUILDS_WAITING = """
UNWIND $waiting AS w
MATCH (m:Metric {id: w.id})
WHERE m.rebuild_waiting_since IS NULL
   OR m.rebuild_waiting_since <= coalesce(m.judged_at, $min)
SET m.rebuild_waiting_since = CASE WHEN w.since > coalesce(m.judged_at, $min) THEN w.since
                                   ELSE m.judged_at + 1 END
RETURN count(m) AS marked
"""

# Readings a rebuild would read, per metric: raw ones (at most $limit) and those of the
# chunks ending at or after w.start (a chunk straddling w.start counted whole: an estimate
# is enough to size batches by).
SCAN_COUNT_HISTORY = """
UNWIND $windows AS w
CALL {
  WITH w
  MATCH (r:MetricReading)
  WHERE r.metric_id = w.id AND r.timestamp >= w.start AND r.timestamp <= $horizon
  WITH r
  LIMIT $limit
  RETURN count(r) AS readings
}
CALL {
  WITH w
  OPTIONAL MATCH (c:ReadingChunk)
  WHERE c.metric_id = w.id AND c.last_timestamp >= w.start
  RETURN sum(c.readings) AS compacted
}
RETURN w.id AS id, readings + coalesce(compacted, 0) AS readings
"""

# A batch's one read: each metric's facts, and its readings after judged_through up to
# $horizon, the oldest $limit of them (a metric never judged has none here: it is rebuilt).
# The owners come with the batch (a metric never changes owner): the path from the user
# would triple the cost of this read. A metric being deleted is left out, as by every read.
# "After judged_through" is `>= judged_through + 1` (times are whole milliseconds), never
# `> judged_through`: FalkorDB's index scan with an exclusive lower bound goes through every
# reading of every metric stamped at that bound, and a fleet's readings of one minute share
# their timestamp: at 32,000 metrics 540 us of CPU a lookup against 8 us (tests/bench
# sweep_queries.py; BENCHMARKS.md "Fleet sweeps"); the store's cost per metric grew with
# the fleet from the second sweep on.
SCAN_READ_NEW = """
UNWIND $metric_ids AS metric_id
MATCH (m:Metric {id: metric_id})
WHERE m.deleting IS NULL
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
CALL {
  WITH metric_id, m
  OPTIONAL MATCH (r:MetricReading)
  WHERE r.metric_id = metric_id AND r.timestamp >= m.judged_through + 1
    AND r.timestamp <= $horizon
  WITH r
  ORDER BY r.timestamp, r.id
  LIMIT $limit
  RETURN collect(r.id) AS ids, collect(r.timestamp) AS timestamps, collect(r.value) AS vals
}
RETURN metric_id AS id, m.name AS name, m.service_id AS service_id,
       latest.timestamp AS latest_timestamp, m.last_append_at AS appended_at,
       m.judged_through AS judged_through,
       m.late_from AS late_from, m.late_seq AS late_seq, m.scan_note AS scan_note,
       m.detection AS detection, m.compacted_through AS compacted_through,
       ids, timestamps, vals
"""

# The history a rebuild judges: per metric the newest $limit raw readings from w.start up
# to $horizon, newest first, and the metric's compacted boundary (readings before it are in
# chunks: ReadingRepository.read_history_for_scan reads those through read_window).
SCAN_READ_HISTORY = """
UNWIND $windows AS w
CALL {
  WITH w
  MATCH (r:MetricReading)
  WHERE r.metric_id = w.id AND r.timestamp >= w.start AND r.timestamp <= $horizon
  WITH r
  ORDER BY r.timestamp DESC, r.id DESC
  LIMIT $limit
  RETURN collect(r.id) AS ids, collect(r.timestamp) AS timestamps, collect(r.value) AS vals
}
OPTIONAL MATCH (m:Metric {id: w.id})
RETURN w.id AS id, ids, timestamps, vals, m.compacted_through AS through
"""

# How far each metric was judged (a mark that judged nothing only changes the note).
# With $lock (Neo4j), judged_through is set first: this holds the metric's lock, so an append
# racing this write either sees the new judged_through (and marks itself late) or committed
# before, and is counted here: when the metric was appended to since the batch read it
# (last_append_at moved), more raw readings in (after, through] than were judged raw means
# one arrived unseen, and they are marked late; so does a compaction since the batch read
# the boundary (it moved raw readings out of the count, which could hide one). Otherwise
# the late readings the batch saw were judged, unless another late append came since
# (late_seq moved). (`>= k.after + 1`, not `> k.after`: see SCAN_READ_NEW.)
# Without $lock (FalkorDB runs one write query at a time per graph: nothing comes between)
# every property is written by the one SET at the end: FalkorDB's cost of a SET is per node
# more than per property, and the early one was a seventh of this statement's CPU
# (tests/bench/scan_marks.py).
SAVE_SCAN_MARKS = """
UNWIND $marks AS k
MATCH (m:Metric {id: k.id})
FOREACH (_ IN CASE WHEN $lock THEN [1] ELSE [] END | SET m.judged_through = k.through)
WITH m, k
CALL {
  WITH m, k
  WITH m, k
  WHERE m.last_append_at <> k.appended_at
  OPTIONAL MATCH (r:MetricReading)
  WHERE r.metric_id = k.id AND r.timestamp >= k.after + 1 AND r.timestamp <= k.through
  RETURN count(r) AS present
}
SET m.judged_through = k.through, m.scan_note = k.note,
    m.judged_at = CASE WHEN k.judged > 0 THEN $now ELSE m.judged_at END,
    m.scan_lag_ms = CASE WHEN k.judged > 0 THEN k.lag_ms ELSE m.scan_lag_ms END,
    m.late_from = CASE
      WHEN present > k.raw
           OR (m.last_append_at <> k.appended_at
               AND coalesce(m.compacted_through, $min) <> coalesce(k.compacted_through, $min))
        THEN CASE WHEN m.late_from IS NULL OR m.late_from > k.after + 1 THEN k.after + 1
                  ELSE m.late_from END
      WHEN coalesce(m.late_seq, 0) = k.late_seq THEN null
      ELSE m.late_from END
RETURN count(m) AS marked
"""

METRIC_IDS_OF_SERVICES = """
MATCH (s:Service)-[:MONITORS]->(m:Metric)
WHERE s.id IN $service_ids
RETURN m.id AS id
"""


# A gap that stores a reading at or before its metric's judged_through (common.scans;
# $timestamps[lo]: the gap's earliest new reading): the scans must judge it in a rebuild.
# Written under the metric's lock (SET found.last_append_at on Neo4j), so it sees the
# judged_through of any scan that wrote before it; only by a gap that stores (past the
# duplicate and neighbour checks), so a re-sent reading marks nothing, nor does a batch
# guessed to be its metrics' tail that was not (ReadingRepository.append_many places it
# again). late_seq counts such gaps. A write of its own, made only for a metric that is late:
# a SET that writes the same values back still costs FalkorDB a property update per metric,
# ~12% of a 1,000-metric append in the tail case, where nothing is late.
_MARK_LATE = """
FOREACH (late IN CASE WHEN $timestamps[lo] <= m.judged_through THEN [m] ELSE [] END |
  SET late.late_seq = coalesce(late.late_seq, 0) + 1,
      late.late_from = CASE WHEN late.late_from IS NULL OR $timestamps[lo] < late.late_from
                            THEN $timestamps[lo] ELSE late.late_from END)
"""


# --- readings --------------------------------------------------------------------------
# Readings travel as columns ($ids, $timestamps, $values), groups of them as columns of
# offsets: lists of scalars are what both drivers encode and both engines parse fastest.
# An item of such a list is taken out (WITH $ids[i] AS id) before an index lookup uses it:
# FalkorDB copies the whole list for each lookup that reads $ids[i] itself (a batch of 5,000
# readings took 20 s so, against 0.2 s).
# Timestamp bounds are inclusive, never strict: `r.timestamp <= $end - 1` for "before
# $end", `>= x + 1` for "after x" (times are whole epoch milliseconds: the same rows on both
# engines). FalkorDB's index scan on (metric_id, timestamp) with a strict bound goes through
# every entry stamped at the bound, of every metric, and a fleet's readings of one minute
# share their timestamp: at 32,000 metrics 350-440 us of the server's CPU a lookup against
# 50-90 us (tests/bench/strict_bounds.py; issue 22). The same holds for chunks' and
# anomalies' timestamps (CHUNKS_OVERLAPPING, LIST_ANOMALIES, MUTE_IN_SPANS).
#
# Append readings to the chains of one or more metrics, each new reading linked between its
# neighbours: the cost is that of the readings spliced, never of the chain behind them.
# A batch is cut into gaps, the readings that go between two neighbours of one chain, found
# by the caller (common.metrics.placement): metric k ($metric_ids[k], sorted) has the gaps
# $metric_gap_first[k] until $metric_gap_last[k]; gap g the readings $gap_first[g] until
# $gap_last[g], in chain order, and goes
#   - behind the metric's newest reading, or into its empty chain ($gap_tail[g]);
#   - after the stored reading $gap_after[g], before the one it links to now;
#   - before the chain's first reading, $gap_before[g].
#  1. With $lock (Neo4j), every metric's MetricLock, then the metric, in metric id order:
#     this takes the write locks before anything reads a chain, so concurrent appends to one
#     metric queue instead of forking, and two batches never lock two metrics in opposite
#     orders. Not a lock on the metric node alone: Neo4j 5 reports a transaction that creates
#     a relationship on a node it has locked, while others queue for that node, as a
#     deadlock; with 8 appenders on one metric, one append in six failed so and was retried
#     (seen on 5.26). The lock node is made by the first append (MERGE; unique on Neo4j) and
#     deleted with the metric. The collect is the barrier: no chain is read before every
#     lock is held. Each metric is found again once the locks are held: a delete that held
#     them first has committed by then, and the append stores nothing for it (and removes
#     the lock it made, if the metric is gone; a metric being deleted keeps its lock until
#     it is gone).
#     Without $lock (FalkorDB) no lock node is made, and the metric found first is the one
#     written: FalkorDB runs one write query at a time per graph, so nothing can come
#     between. Either way a metric marked `deleting` (a delete in batches has begun) gets
#     nothing. One text for both engines; the parameter says what the engine needs. (The
#     lock node's MERGE and stamp were ~5% of a 1,000-metric append there. The re-find's
#     lookups are keyed on a value that is null without $lock, which FalkorDB tests before
#     the index: with `$lock AND ...` in their WHERE it looked every metric up twice more
#     for nothing, ~10% of a 1,000-metric append.)
#     With $owner_id, only that owner's metrics are found (the ingest API names metrics by
#     id and this is their lookup: ReadingRepository.append_many); null: any metric.
#  2. A reading whose (metric_id, id) is stored already is left out (so is a gap of them),
#     looked up in the gaps the caller asks to ($gap_checked): on Neo4j its tail gaps are
#     left to the uniqueness constraint first (ReadingRepository._write says why).
#  3. Each gap checks that its neighbours are still neighbours (a concurrent append may have
#     put readings between them since the caller looked): the reading before it is older, the
#     one after it newer, nothing is linked in between. A gap that finds otherwise stores
#     nothing and is left out of the answer: the caller places its readings again.
#  4. New readings are created and linked between the neighbours; the NEXT link they replace
#     is deleted; the tail gap moves LATEST_READING.
#  5. A gap whose first reading is older than the metric's compacted boundary
#     (`m.compacted_through`, read under the lock, which compaction takes too) stores
#     nothing either: its readings belong in a ReadingChunk (compaction moved the boundary
#     since the caller looked); the caller merges them there on its next attempt.
#  6. A gap that stores a reading at or before the metric's judged_through marks it late
#     for the scans (_MARK_LATE).
# Only scalars, nodes and relationships are carried from row to row, and a stored reading is
# looked up only where a gap names one (the WHERE before the lookup is checked first): FalkorDB
# copies a list for each row it is carried on, and each lookup costs as much as a new reading.
# A row per gap that stored readings: how many.
APPEND_READINGS = (
    """
UNWIND range(0, size($metric_ids) - 1) AS k
WITH k, $metric_ids[k] AS metric_id
MATCH (found:Metric {id: metric_id})<-[:MONITORS]-(:Service)<-[:OWNS]-(owner:User)
WITH k, metric_id, found, owner
WHERE $owner_id IS NULL OR owner.id = $owner_id
FOREACH (_ IN CASE WHEN $lock THEN [1] ELSE [] END |
  MERGE (lock:MetricLock {metric_id: metric_id})
  SET lock.append_seq = coalesce(lock.append_seq, 0) + 1)
SET found.last_append_at = $now
WITH collect({k: k, id: metric_id, found: found}) AS locked
UNWIND locked AS held
WITH held.k AS k, held.id AS metric_id, held.found AS found
WITH k, metric_id, found, CASE WHEN $lock THEN metric_id END AS relook
OPTIONAL MATCH (again:Metric)
WHERE relook IS NOT NULL AND again.id = relook
WITH k, metric_id, found, again, CASE WHEN again IS NULL THEN relook END AS orphaned
OPTIONAL MATCH (orphan:MetricLock)
WHERE orphaned IS NOT NULL AND orphan.metric_id = orphaned
FOREACH (l IN CASE WHEN orphan IS NULL THEN [] ELSE [orphan] END | DELETE l)
WITH k, metric_id, CASE WHEN $lock THEN again ELSE found END AS m
WHERE m IS NOT NULL AND m.deleting IS NULL
OPTIONAL MATCH (m)-[old_latest:LATEST_READING]->(latest:MetricReading)
UNWIND range($metric_gap_first[k], $metric_gap_last[k] - 1) AS gap
WITH gap, m, metric_id, old_latest, latest, $gap_checked[gap] AS checked
UNWIND range($gap_first[gap], $gap_last[gap] - 1) AS i
WITH gap, m, metric_id, old_latest, latest, i, CASE WHEN checked THEN $ids[i] END AS id
OPTIONAL MATCH (dup:MetricReading)
WHERE id IS NOT NULL AND dup.metric_id = metric_id AND dup.id = id
WITH gap, m, metric_id, old_latest, latest, i, dup
ORDER BY i
WITH gap, m, metric_id, old_latest, latest, collect(CASE WHEN dup IS NULL THEN i END) AS fresh
WHERE size(fresh) > 0
WITH gap, m, metric_id, old_latest, latest, fresh, $gap_tail[gap] AS tail,
     $gap_after[gap] AS after_id, $gap_before[gap] AS before_id
OPTIONAL MATCH (named:MetricReading)
WHERE after_id IS NOT NULL AND named.metric_id = metric_id AND named.id = after_id
OPTIONAL MATCH (head:MetricReading)
WHERE before_id IS NOT NULL AND head.metric_id = metric_id AND head.id = before_id
WITH gap, m, old_latest, latest, fresh, tail, head,
     CASE WHEN tail THEN latest ELSE named END AS after
OPTIONAL MATCH (after)-[link:NEXT]->(next:MetricReading)
OPTIONAL MATCH (into:MetricReading)-[:NEXT]->(head)
WITH gap, m, old_latest, latest, fresh, tail, head, after, link, into,
     CASE WHEN after IS NULL THEN head ELSE next END AS before,
     fresh[0] AS lo, fresh[size(fresh) - 1] AS hi
WHERE $timestamps[lo] >= coalesce(m.compacted_through, $min)
  AND CASE
        WHEN after IS NOT NULL THEN
          (after.timestamp < $timestamps[lo]
           OR (after.timestamp = $timestamps[lo] AND after.id < $ids[lo]))
          AND (before IS NULL OR $timestamps[hi] < before.timestamp
               OR ($timestamps[hi] = before.timestamp AND $ids[hi] < before.id))
          AND (before IS NOT NULL OR tail)
        WHEN tail THEN latest IS NULL
        ELSE head IS NOT NULL AND into IS NULL
          AND ($timestamps[hi] < head.timestamp
               OR ($timestamps[hi] = head.timestamp AND $ids[hi] < head.id))
      END
"""
    + _MARK_LATE
    + """
WITH gap, m, old_latest, after, link, before, fresh
UNWIND fresh AS i
CREATE (n:MetricReading {id: $ids[i], metric_id: m.id, timestamp: $timestamps[i],
                         value: $values[i]})
WITH gap, m, old_latest, after, link, before, collect(n) AS created
FOREACH (l IN CASE WHEN link IS NULL THEN [] ELSE [link] END | DELETE l)
FOREACH (l IN CASE WHEN before IS NULL AND old_latest IS NOT NULL THEN [old_latest] ELSE [] END |
  DELETE l)
FOREACH (n IN CASE WHEN before IS NULL THEN [created[size(created) - 1]] ELSE [] END |
  CREATE (m)-[:LATEST_READING]->(n))
WITH gap, created,
     CASE WHEN after IS NULL THEN [] ELSE [after] END + created
     + CASE WHEN before IS NULL THEN [] ELSE [before] END AS chain
FOREACH (k IN range(0, size(chain) - 2) |
  FOREACH (a IN [chain[k]] | FOREACH (b IN [chain[k + 1]] | CREATE (a)-[:NEXT]->(b))))
RETURN gap, size(created) AS stored
"""
)

# Each metric's newest reading (where in-order readings are appended); no row: no metric.
LATEST_READINGS = """
UNWIND $metric_ids AS metric_id
MATCH (m:Metric {id: metric_id})
WHERE m.deleting IS NULL
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
RETURN m.id AS id, latest.id AS latest_id, latest.timestamp AS latest_timestamp
"""

# Each metric's compacted boundary (readings older than it are in ReadingChunks; null:
# none compacted); no row: no metric.
METRIC_BOUNDARIES = """
UNWIND $metric_ids AS metric_id
MATCH (m:Metric {id: metric_id})
RETURN m.id AS id, m.compacted_through AS through
"""

# Which of these (metric_id, id) pairs are stored: a row for each that is.
STORED_READINGS = """
UNWIND range(0, size($ids) - 1) AS i
WITH i, $metric_ids[i] AS metric_id, $ids[i] AS id
MATCH (r:MetricReading {metric_id: metric_id, id: id})
RETURN i AS reading
"""

# The readings of each range ($range_*: metric, first and last timestamp, inclusive), as
# columns in chain order: what a run of late readings is placed among. No row: none.
# (Each bound is a plain comparison: an OR here makes FalkorDB scan the metric's readings.)
READINGS_IN_RANGES = """
UNWIND range(0, size($range_metric) - 1) AS k
WITH k, $range_metric[k] AS metric_id, $range_start[k] AS lo, $range_end[k] AS hi
MATCH (r:MetricReading)
WHERE r.metric_id = metric_id AND r.timestamp >= lo AND r.timestamp <= hi
WITH k, r
ORDER BY r.timestamp, r.id
RETURN k AS range, collect(r.id) AS ids, collect(r.timestamp) AS timestamps
"""

# For each probe ($probe_*: metric, timestamp, id), the reading just before it in chain order
# among those stamped since $probe_from: timestamp and id, null if there is none.
READING_BEFORE = """
UNWIND range(0, size($probe_metric) - 1) AS k
WITH k, $probe_metric[k] AS metric_id, $probe_timestamp[k] AS timestamp, $probe_id[k] AS id,
     $probe_from[k] AS lo
OPTIONAL MATCH (r:MetricReading)
WHERE r.metric_id = metric_id AND r.timestamp >= lo AND r.timestamp <= timestamp
WITH k, metric_id, timestamp, id,
     max(CASE WHEN r.timestamp < timestamp OR r.id < id THEN r.timestamp END) AS at
OPTIONAL MATCH (same:MetricReading)
WHERE same.metric_id = metric_id AND same.timestamp = at
RETURN k AS probe, at AS timestamp,
       max(CASE WHEN at < timestamp OR same.id < id THEN same.id END) AS id
"""

# For each probe, the reading just after it in chain order among those stamped until
# $probe_until: where readings older than a chain's first one are linked to.
READING_AFTER = """
UNWIND range(0, size($probe_metric) - 1) AS k
WITH k, $probe_metric[k] AS metric_id, $probe_timestamp[k] AS timestamp, $probe_id[k] AS id,
     $probe_until[k] AS hi
OPTIONAL MATCH (r:MetricReading)
WHERE r.metric_id = metric_id AND r.timestamp >= timestamp AND r.timestamp <= hi
WITH k, metric_id, timestamp, id,
     min(CASE WHEN r.timestamp > timestamp OR r.id > id THEN r.timestamp END) AS at
OPTIONAL MATCH (same:MetricReading)
WHERE same.metric_id = metric_id AND same.timestamp = at
RETURN k AS probe, at AS timestamp,
       min(CASE WHEN at > timestamp OR same.id > id THEN same.id END) AS id
"""

# A window of the raw readings by index range on (metric_id, timestamp): never an
# unbounded [:NEXT*] walk. With the metric's compacted boundary (`through`: older readings
# are in ReadingChunks), read in the same statement, so that the repository can tell
# whether compaction moved readings while it read the chunks (see ReadingRepository).
# One row of three lists in window order (collect keeps the ORDER BY's order on both
# engines): the client parses three arrays instead of a row per reading, which for 100,000
# readings is three times faster and holds a fraction of the memory.
READ_WINDOW = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp <= $end - 1
WITH r
ORDER BY r.timestamp, r.id
LIMIT $limit
WITH collect(r.id) AS ids, collect(r.timestamp) AS timestamps, collect(r.value) AS vals
OPTIONAL MATCH (m:Metric {id: $metric_id})
RETURN ids, timestamps, vals, m.compacted_through AS through
"""

# The newest $limit readings of a window (rolling scans want the recent end), newest first.
READ_WINDOW_NEWEST = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp <= $end - 1
WITH r
ORDER BY r.timestamp DESC, r.id DESC
LIMIT $limit
WITH collect(r.id) AS ids, collect(r.timestamp) AS timestamps, collect(r.value) AS vals
OPTIONAL MATCH (m:Metric {id: $metric_id})
RETURN ids, timestamps, vals, m.compacted_through AS through
"""

# Every raw reading of a window, or of a span of a long one, in no order: read_window
# without a limit puts them in order in the client (a check where they come in time order,
# as FalkorDB's index mostly gives them; a numpy sort where late readings were spliced in),
# which costs less than the engine's sort (40% of FalkorDB's time for 10,000 readings).
# The three lists are collected from the same rows, so they line up.
READ_WINDOW_UNORDERED = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp <= $end - 1
WITH collect(r.id) AS ids, collect(r.timestamp) AS timestamps, collect(r.value) AS vals
OPTIONAL MATCH (m:Metric {id: $metric_id})
RETURN ids, timestamps, vals, m.compacted_through AS through
"""

# How many readings a window holds, and the first and last one's time: where a long
# window is cut into spans of about READ_BATCH readings each (ReadingRepository.read_window).
WINDOW_EXTENT = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp <= $end - 1
RETURN count(r) AS readings, min(r.timestamp) AS first, max(r.timestamp) AS last
"""

# Keyset paging: strictly after ($after_timestamp, $after_id) in chain order. $start is at
# least $after_timestamp (keyset_page sees to it), so the index range does the paging and the
# NOT only drops the readings at $after_timestamp up to $after_id. (An OR of the two cases
# here went into FalkorDB's index scan and made a page of 100 cost 15 times as much.)
# Columns, as READ_WINDOW: a page costs what a window read costs.
LIST_READINGS_AFTER = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp <= $end - 1
  AND NOT (r.timestamp = $after_timestamp AND r.id <= $after_id)
WITH r
ORDER BY r.timestamp, r.id
LIMIT $limit
WITH collect(r.id) AS ids, collect(r.timestamp) AS timestamps, collect(r.value) AS vals
OPTIONAL MATCH (m:Metric {id: $metric_id})
RETURN ids, timestamps, vals, m.compacted_through AS through
"""

# Where a window's readings start, when a chart does not say: the buckets are cut from there.
WINDOW_FIRST = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp <= $end - 1
WITH min(r.timestamp) AS first
OPTIONAL MATCH (m:Metric {id: $metric_id})
RETURN first, m.compacted_through AS through
"""

# A window downsampled in the engine: min, max and count per bucket of $width ms from
# $start, so only the buckets cross the wire (a spike stays a spike: nothing is averaged).
# Integers divide as integers on both engines (and timestamp - $start is never negative).
WINDOW_BUCKETS = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp <= $end - 1
WITH (r.timestamp - $start) / $width AS bucket, r.value AS value
WITH bucket, min(value) AS low, max(value) AS high, count(*) AS readings
ORDER BY bucket
WITH collect(bucket) AS buckets, collect(low) AS lows, collect(high) AS highs,
     collect(readings) AS counts
OPTIONAL MATCH (m:Metric {id: $metric_id})
RETURN buckets, lows, highs, counts, m.compacted_through AS through
"""

# The chain as the graph links it, for invariant checks (tests, `neonomaly check`).
CHAIN_FACTS = """
MATCH (m:Metric {id: $metric_id})
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
OPTIONAL MATCH (r:MetricReading {metric_id: $metric_id})
OPTIONAL MATCH (r)-[:NEXT]->(n:MetricReading)
RETURN latest.id AS latest_id, r.id AS id, r.timestamp AS timestamp, collect(n.id) AS next_ids
"""


# --- compacted history: ReadingChunk ----------------------------------------------------
# Readings older than a metric's boundary `m.compacted_through` live in ReadingChunk nodes
# (common.metrics.chunks has the format): each holds a run of readings, its summary
# (readings, low, high, total, first and last timestamp) and a version that every rewrite
# raises, so that a writer who read a chunk can tell if it changed since.
# Raw readings are all at or after the boundary; chunks all before it, never overlapping.

_CHUNK_SUMMARY = """
RETURN m.compacted_through AS through, collect(c.id) AS ids, collect(c.version) AS versions,
       collect(c.first_timestamp) AS firsts, collect(c.last_timestamp) AS lasts,
       collect(c.readings) AS counts, collect(c.low) AS lows, collect(c.high) AS highs
"""

# The boundary and the summaries of the chunks overlapping a window, oldest first.
CHUNKS_OVERLAPPING = (
    """
MATCH (m:Metric {id: $metric_id})
WHERE m.deleting IS NULL
OPTIONAL MATCH (c:ReadingChunk)
WHERE c.metric_id = $metric_id AND c.first_timestamp <= $end - 1 AND c.last_timestamp >= $start
WITH m, c
ORDER BY c.first_timestamp
"""
    + _CHUNK_SUMMARY
)

# The newest chunk: compaction adds to it while it holds fewer than CHUNK_READINGS.
LAST_CHUNK = (
    """
MATCH (m:Metric {id: $metric_id})
WHERE m.deleting IS NULL
OPTIONAL MATCH (c:ReadingChunk {metric_id: $metric_id})
WITH m, c
ORDER BY c.first_timestamp DESC
LIMIT 1
"""
    + _CHUNK_SUMMARY
)

METRIC_BOUNDARY = """
MATCH (m:Metric {id: $metric_id})
RETURN m.compacted_through AS through
"""

# The compressed columns of some chunks (ids only when asked: a chart needs none).
CHUNK_COLUMNS = """
MATCH (c:ReadingChunk)
WHERE c.metric_id = $metric_id AND c.id IN $chunk_ids
RETURN c.id AS id, c.version AS version, c.times AS times, c.vals AS vals,
       CASE WHEN $with_ids THEN c.ids ELSE null END AS ids
"""

# Which of these ids a raw reading of the metric has (a late reading's duplicate check).
RAW_IDS_STORED = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.id IN $ids
RETURN collect(r.id) AS ids
"""

# A page of metrics for compaction and retention, by id: the boundary and the newest
# reading's time (which compaction leaves raw, so that LATEST_READING always has a node).
METRICS_PAGE = """
MATCH (m:Metric)
WHERE m.id > $after AND m.deleting IS NULL
WITH m
ORDER BY m.id
LIMIT $limit
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
RETURN m.id AS id, m.compacted_through AS through, latest.timestamp AS latest
"""

# The start of a statement that edits a metric's readings: locks as APPEND_READINGS does
# (MetricLock, then the metric), so that on Neo4j it and an append never interleave; a
# metric deleted meanwhile leaves `m` null (and its lock, made here, deleted); one being
# deleted is left alone (its readings and chunks are going, a batch at a time).
_UNDER_METRIC_LOCK = """
MATCH (found:Metric {id: $metric_id})
MERGE (lock:MetricLock {metric_id: $metric_id})
SET lock.append_seq = coalesce(lock.append_seq, 0) + 1
WITH lock
OPTIONAL MATCH (m:Metric {id: $metric_id})
FOREACH (l IN CASE WHEN m IS NULL THEN [lock] ELSE [] END | DELETE l)
WITH m
"""

# Rewrite a metric's compacted history in one statement: check that nothing changed since
# the caller read it, then delete chunks, write chunks (new, or a new version of one read),
# delete the raw readings now compacted and move the boundary. Compaction, a late reading's
# merge and retention's trim all go through here.
#  - Under the metric's lock (_UNDER_METRIC_LOCK); a metric deleted meanwhile gets nothing.
#  - Checks: the boundary is still $through; every chunk read ($expected: id and version)
#    is there at that version; exactly $moved raw readings are older than $new_through
#    (the ones the caller read and compacted: no late reading joined them since).
#    Any check failing: no row back and nothing written; the caller reads again.
#  - A merge of late readings ($late_from: the earliest of them; null for compaction and
#    retention) is an append for the scans: it stamps last_append_at, and marks the metric
#    late when a reading is at or before its judged_through, as _MARK_LATE marks a chain
#    append, so the next sweep judges it in a rebuild. A reading after judged_through (the
#    scans are behind the boundary) marks it late from judged_through + 1, the rebuild a
#    sweep would plan anyway: a batch rebuilding it now may have read the chunks before this
#    merge, and SAVE_SCAN_MARKS counts raw readings only, so without the mark it would move
#    judged_through past a reading it never saw.
REPLACE_CHUNKS = (
    _UNDER_METRIC_LOCK
    + """
WHERE m IS NOT NULL AND m.deleting IS NULL AND coalesce(m.compacted_through, $min) = $through
OPTIONAL MATCH (c:ReadingChunk)
WHERE c.metric_id = $metric_id AND c.id IN $expected_ids
WITH m, collect(c) AS held
WHERE size([c IN held WHERE any(e IN $expected WHERE e.id = c.id AND e.version = c.version)])
      = size($expected)
OPTIONAL MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp <= $new_through - 1
WITH m, held, collect(r) AS moved
WHERE size(moved) = $moved
FOREACH (c IN [x IN held WHERE x.id IN $remove] | DELETE c)
FOREACH (r IN moved | DETACH DELETE r)
FOREACH (k IN $chunks |
  MERGE (c:ReadingChunk {id: k.id})
  SET c.metric_id = $metric_id, c.version = k.version, c.first_timestamp = k.first,
      c.last_timestamp = k.last, c.readings = k.readings, c.low = k.low, c.high = k.high,
      c.total = k.total, c.times = k.times, c.vals = k.vals, c.ids = k.ids)
SET m.compacted_through = $new_through
FOREACH (_ IN CASE WHEN $late_from IS NULL THEN [] ELSE [1] END | SET m.last_append_at = $now)
FOREACH (late IN CASE WHEN $late_from IS NULL OR m.judged_through IS NULL THEN []
                      WHEN $late_from <= m.judged_through THEN [$late_from]
                      ELSE [m.judged_through + 1] END |
  SET m.late_seq = coalesce(m.late_seq, 0) + 1,
      m.late_from = CASE WHEN m.late_from IS NULL OR late < m.late_from
                         THEN late ELSE m.late_from END)
RETURN size(moved) AS moved
"""
)

# Retention of raw readings: the oldest up to $limit before $cutoff, under the metric's
# locks as any chain edit. What remains is the chain's newer part, still linked.
DELETE_RAW_BEFORE = (
    _UNDER_METRIC_LOCK
    + """
WHERE m IS NOT NULL AND m.deleting IS NULL
OPTIONAL MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp <= $cutoff - 1
WITH r
ORDER BY r.timestamp
LIMIT $limit
WITH collect(r) AS old
FOREACH (r IN old | DETACH DELETE r)
RETURN size(old) AS deleted
"""
)
