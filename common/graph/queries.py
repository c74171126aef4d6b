"""Every Cypher statement the service runs, as named constants.

Written in the subset both Neo4j 5 and FalkorDB execute (each constant is linted by
Neo4j's semantic analyzer in the test suite and run on FalkorDB by the contract tests).
Values go only through $parameters. Every write is one statement: FalkorDB has no
multi-statement transactions, and one statement is one transaction on Neo4j too.

Times are integer epoch milliseconds. Queries return scalar columns, never nodes, so
both engines' results look alike.
"""

# --- schema -------------------------------------------------------------------------
# Neo4j: constraints give uniqueness (and the index behind it); composite keys where an
# id is only unique within its parent.
NEO4J_SCHEMA: tuple[str, ...] = (
    "CREATE CONSTRAINT user_id IF NOT EXISTS FOR (u:User) REQUIRE u.id IS UNIQUE",
    "CREATE CONSTRAINT user_key IF NOT EXISTS FOR (u:User) REQUIRE u.api_key_hash IS UNIQUE",
    "CREATE CONSTRAINT service_id IF NOT EXISTS FOR (s:Service) REQUIRE s.id IS UNIQUE",
    "CREATE CONSTRAINT metric_id IF NOT EXISTS FOR (m:Metric) REQUIRE m.id IS UNIQUE",
    "CREATE CONSTRAINT metric_name IF NOT EXISTS FOR (m:Metric) "
    "REQUIRE (m.service_id, m.name) IS UNIQUE",
    "CREATE CONSTRAINT reading_id IF NOT EXISTS FOR (r:MetricReading) "
    "REQUIRE (r.metric_id, r.id) IS UNIQUE",
    "CREATE CONSTRAINT anomaly_id IF NOT EXISTS FOR (a:Anomaly) REQUIRE a.id IS UNIQUE",
    "CREATE CONSTRAINT metric_lock IF NOT EXISTS FOR (l:MetricLock) REQUIRE l.metric_id IS UNIQUE",
    "CREATE INDEX reading_window IF NOT EXISTS FOR (r:MetricReading) ON (r.metric_id, r.timestamp)",
    "CREATE INDEX anomaly_window IF NOT EXISTS FOR (a:Anomaly) ON (a.metric_id, a.timestamp)",
    "CREATE CONSTRAINT incident_id IF NOT EXISTS FOR (i:Incident) REQUIRE i.id IS UNIQUE",
    "CREATE INDEX incident_status IF NOT EXISTS FOR (i:Incident) ON (i.status)",
    "CREATE CONSTRAINT channel_id IF NOT EXISTS FOR (c:NotificationChannel) REQUIRE c.id IS UNIQUE",
)

# The names of the constraints and indexes that exist (constraints' own indexes included).
NEO4J_SCHEMA_NAMES = "SHOW INDEXES YIELD name RETURN name"

# FalkorDB: one range index per label covering the looked-up properties (it answers a
# metric_id + timestamp range from that index). Uniqueness holds because FalkorDB runs one
# write query at a time per graph and every create below checks before it creates.
FALKORDB_SCHEMA: tuple[str, ...] = (
    "CREATE INDEX FOR (u:User) ON (u.id, u.api_key_hash)",
    "CREATE INDEX FOR (s:Service) ON (s.id)",
    "CREATE INDEX FOR (m:Metric) ON (m.id, m.service_id)",
    "CREATE INDEX FOR (r:MetricReading) ON (r.metric_id, r.timestamp, r.id)",
    "CREATE INDEX FOR (a:Anomaly) ON (a.id, a.metric_id, a.timestamp)",
    "CREATE INDEX FOR (l:MetricLock) ON (l.metric_id)",
    "CREATE INDEX FOR (i:Incident) ON (i.id, i.status)",
    "CREATE INDEX FOR (c:NotificationChannel) ON (c.id)",
)

FALKORDB_INDEXED_PROPERTIES = "CALL db.indexes() YIELD label, properties RETURN label, properties"

PING = "RETURN 1 AS ok"

# --- users ----------------------------------------------------------------------------
CREATE_USER = """
CREATE (u:User {id: $id, name: $name, api_key_hash: $api_key_hash, created_at: $created_at})
RETURN u.id AS id, u.name AS name, u.created_at AS created_at
"""

FIND_USER_BY_KEY_HASH = """
MATCH (u:User {api_key_hash: $api_key_hash})
RETURN u.id AS id, u.name AS name, u.created_at AS created_at
"""

# --- services -------------------------------------------------------------------------
_SERVICE_COLUMNS = """
RETURN s.id AS id, s.name AS name, s.description AS description, u.id AS owner_id,
       s.created_at AS created_at
"""

CREATE_SERVICE = (
    """
MATCH (u:User {id: $owner_id})
CREATE (u)-[:OWNS]->(s:Service {id: $id, name: $name, description: $description,
                                created_at: $created_at})
"""
    + _SERVICE_COLUMNS
)

LIST_SERVICES = (
    """
MATCH (u:User {id: $owner_id})-[:OWNS]->(s:Service)
"""
    + _SERVICE_COLUMNS
    + "ORDER BY s.created_at, s.id"
)

GET_SERVICE = (
    """
MATCH (u:User {id: $owner_id})-[:OWNS]->(s:Service {id: $service_id})
"""
    + _SERVICE_COLUMNS
)

# $set_description distinguishes "leave it" from "clear it" (a PATCH with null).
UPDATE_SERVICE = (
    """
MATCH (u:User {id: $owner_id})-[:OWNS]->(s:Service {id: $service_id})
SET s.name = coalesce($name, s.name),
    s.description = CASE WHEN $set_description THEN $description ELSE s.description END
"""
    + _SERVICE_COLUMNS
)

# One statement: a metric created, or readings appended, while the service is being deleted
# are either deleted with it or refused, never left behind as orphans. On Neo4j (read
# committed, row locks) that takes locks in the order every writer uses:
#  1. The service (SET): CREATE_METRIC locks it too, so a metric committed before is seen
#     here, and one after finds the service gone.
#  2. Each metric's MetricLock, then the metric, in APPEND_READINGS' order (so the two never
#     deadlock). An append holding them commits first and its readings are then seen; one
#     that comes after re-finds its metric gone and stores nothing (see APPEND_READINGS).
#  3. Only after every lock is held (the collect waits for all rows) are the readings,
#     anomalies and locks read and deleted: read before, an append committing in between
#     would leave its readings behind (seen on Neo4j 5.26 in 3 of 4 runs).
# coalesce: FalkorDB fails on a null node in a later MATCH (a service without metrics);
# no metric id is empty. FalkorDB runs one write at a time, so its order is moot.
DELETE_SERVICE = """
MATCH (:User {id: $owner_id})-[:OWNS]->(s:Service {id: $service_id})
SET s.deleting = true
WITH s
OPTIONAL MATCH (s)-[:MONITORS]->(m:Metric)
WITH s, m, coalesce(m.id, '') AS metric_id
OPTIONAL MATCH (held:MetricLock {metric_id: metric_id})
FOREACH (l IN CASE WHEN held IS NULL THEN [] ELSE [held] END | SET l.deleting = true)
FOREACH (x IN CASE WHEN m IS NULL THEN [] ELSE [m] END | SET x.deleting = true)
WITH s, collect(m) AS metrics
UNWIND CASE WHEN size(metrics) = 0 THEN [null] ELSE metrics END AS m
WITH s, m, coalesce(m.id, '') AS metric_id
OPTIONAL MATCH (a:Anomaly {metric_id: metric_id})
WITH s, m, metric_id, collect(a) AS anomalies
OPTIONAL MATCH (r:MetricReading {metric_id: metric_id})
WITH s, m, metric_id, anomalies, collect(r) AS readings
OPTIONAL MATCH (lock:MetricLock {metric_id: metric_id})
WITH s, m, anomalies, readings, collect(lock) AS locks
FOREACH (a IN anomalies | DETACH DELETE a)
FOREACH (r IN readings | DETACH DELETE r)
FOREACH (l IN locks | DELETE l)
WITH s, collect(m) AS metrics
FOREACH (m IN metrics | DETACH DELETE m)
DETACH DELETE s
RETURN count(*) AS deleted
"""

# --- metrics --------------------------------------------------------------------------
_METRIC_COLUMNS = """
RETURN m.id AS id, m.name AS name, m.description AS description, m.service_id AS service_id,
       m.created_at AS created_at, latest.id AS latest_id, latest.timestamp AS latest_timestamp,
       latest.value AS latest_value
"""

# No row: the service is not the owner's. clashes > 0: the name is taken in that service.
CREATE_METRIC = """
MATCH (:User {id: $owner_id})-[:OWNS]->(s:Service {id: $service_id})
SET s.metrics_changed_at = $created_at
WITH s
OPTIONAL MATCH (s)-[:MONITORS]->(existing:Metric {name: $name})
WITH s, count(existing) AS clashes
FOREACH (_ IN CASE WHEN clashes = 0 THEN [1] ELSE [] END |
  CREATE (s)-[:MONITORS]->(:Metric {id: $id, name: $name, description: $description,
                                    service_id: $service_id, created_at: $created_at}))
RETURN clashes
"""

GET_METRIC = (
    """
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service)-[:MONITORS]->(m:Metric {id: $metric_id})
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
"""
    + _METRIC_COLUMNS
)

FIND_METRIC_BY_NAME = (
    """
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service {id: $service_id})-[:MONITORS]->
      (m:Metric {name: $name})
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
"""
    + _METRIC_COLUMNS
)

LIST_METRICS = (
    """
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service {id: $service_id})-[:MONITORS]->(m:Metric)
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
"""
    + _METRIC_COLUMNS
    + "ORDER BY m.created_at, m.id"
)

# No row: not the owner's metric. clashes > 0: another metric of the service has the name.
UPDATE_METRIC = """
MATCH (:User {id: $owner_id})-[:OWNS]->(s:Service)-[:MONITORS]->(m:Metric {id: $metric_id})
OPTIONAL MATCH (s)-[:MONITORS]->(other:Metric {name: $name})
WHERE other.id <> m.id
WITH m, count(other) AS clashes
FOREACH (_ IN CASE WHEN clashes = 0 THEN [1] ELSE [] END |
  SET m.name = coalesce($name, m.name),
      m.description = CASE WHEN $set_description THEN $description ELSE m.description END)
RETURN clashes
"""

# Readings and anomalies are found by their indexed metric_id, not by walking the chain.
# The MetricLock and the metric are locked first, as DELETE_SERVICE does and for its reason:
# an append racing the delete is then either all seen here or finds the metric gone. The
# count is only a barrier: nothing below runs before the locks are held.
DELETE_METRIC = """
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service)-[:MONITORS]->(m:Metric {id: $metric_id})
OPTIONAL MATCH (held:MetricLock {metric_id: $metric_id})
FOREACH (l IN CASE WHEN held IS NULL THEN [] ELSE [held] END | SET l.deleting = true)
SET m.deleting = true
WITH m, count(held) AS _locked
OPTIONAL MATCH (a:Anomaly {metric_id: $metric_id})
WITH m, collect(a) AS anomalies
OPTIONAL MATCH (r:MetricReading {metric_id: $metric_id})
WITH m, anomalies, collect(r) AS readings
OPTIONAL MATCH (lock:MetricLock {metric_id: $metric_id})
WITH m, anomalies, readings, collect(lock) AS locks
FOREACH (a IN anomalies | DETACH DELETE a)
FOREACH (r IN readings | DETACH DELETE r)
FOREACH (l IN locks | DELETE l)
DETACH DELETE m
RETURN count(*) AS deleted
"""

GET_METRIC_REF = """
MATCH (u:User)-[:OWNS]->(:Service)-[:MONITORS]->(m:Metric {id: $metric_id})
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
RETURN m.id AS id, m.name AS name, m.service_id AS service_id, u.id AS owner_id,
       latest.timestamp AS latest_timestamp
"""

# last_append_at is the server's clock at the last append: "received since", not reading time,
# so a late reading with an old timestamp still makes the metric due for a scan.
METRICS_APPENDED_SINCE = """
MATCH (u:User)-[:OWNS]->(:Service)-[:MONITORS]->(m:Metric)
WHERE m.last_append_at >= $since
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
RETURN m.id AS id, m.name AS name, m.service_id AS service_id, u.id AS owner_id,
       latest.timestamp AS latest_timestamp
ORDER BY m.id
"""

# --- readings -------------------------------------------------------------------------
# Append a batch (sorted by timestamp, id; no id twice) and keep the chain whole:
#  1. SET on the metric's MetricLock first: on Neo4j this takes a write lock before anything
#     reads LATEST_READING, so concurrent appends to one metric queue instead of forking.
#     (FalkorDB runs one write query at a time per graph anyway.) Not a lock on the metric
#     node itself: Neo4j 5 reports a transaction that creates a relationship on a node it
#     has locked, while others queue for that node, as a deadlock; with 8 appenders on one
#     metric, one append in six failed so and was retried (seen on 5.26), and under HTTP
#     load requests timed out. The lock node is made by the first append (MERGE; unique on
#     Neo4j) and deleted with the metric.
#     The metric is found again once the locks are held: a delete that held them first
#     has committed by then, and the append stores nothing (and removes the lock it made).
#  2. Create the readings whose (metric_id, id) is new; a re-sent id is stored once.
#  3. Everything at or after $earliest (the batch's first timestamp) is the chain's tail,
#     found by the (metric_id, timestamp) index: for in-order appends it is just the new
#     readings. Unlink the tail, sort it with the new readings and link it back behind the
#     anchor (the last reading before $earliest), so a late reading is spliced in place.
#     The new readings are created before the scan so that only scalars cross the UNWIND.
# No row back: every reading was already stored.
APPEND_READINGS = """
MATCH (found:Metric {id: $metric_id})
MERGE (lock:MetricLock {metric_id: $metric_id})
SET lock.append_seq = coalesce(lock.append_seq, 0) + 1
WITH found, lock
SET found.last_append_at = $now
WITH lock
OPTIONAL MATCH (m:Metric {id: $metric_id})
FOREACH (l IN CASE WHEN m IS NULL THEN [lock] ELSE [] END | DELETE l)
WITH m
WHERE m IS NOT NULL
UNWIND $readings AS r
OPTIONAL MATCH (dup:MetricReading {metric_id: $metric_id, id: r.id})
WITH m, r, dup
WHERE dup IS NULL
CREATE (:MetricReading {id: r.id, metric_id: $metric_id, timestamp: r.timestamp, value: r.value})
WITH m, count(*) AS stored
OPTIONAL MATCH (m)-[old_latest:LATEST_READING]->(latest:MetricReading)
OPTIONAL MATCH (x:MetricReading {metric_id: $metric_id})
WHERE x.timestamp >= $earliest
OPTIONAL MATCH (p:MetricReading)-[link:NEXT]->(x)
WITH m, stored, latest, old_latest, collect(x) AS tail, collect(link) AS old_links,
     collect(CASE WHEN p.timestamp < $earliest THEN p END) AS before
FOREACH (l IN old_links | DELETE l)
DELETE old_latest
WITH m, stored, tail,
     CASE WHEN size(before) > 0 THEN head(before)
          WHEN latest.timestamp < $earliest THEN latest
          ELSE null END AS anchor
UNWIND tail AS s
WITH m, stored, anchor, s
ORDER BY s.timestamp, s.id
WITH m, stored, anchor, collect(s) AS ordered
WITH m, stored, CASE WHEN anchor IS NULL THEN ordered ELSE [anchor] + ordered END AS chain
WITH m, stored, chain, chain[size(chain) - 1] AS newest
CREATE (m)-[:LATEST_READING]->(newest)
FOREACH (i IN range(0, size(chain) - 2) |
  FOREACH (a IN [chain[i]] | FOREACH (b IN [chain[i + 1]] | CREATE (a)-[:NEXT]->(b))))
RETURN stored
"""

# A window by index range on (metric_id, timestamp): never an unbounded [:NEXT*] walk.
# One row of three lists in window order (collect keeps the ORDER BY's order on both
# engines): the client parses three arrays instead of a row per reading, which for 100,000
# readings is three times faster and holds a fraction of the memory.
READ_WINDOW = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp < $end
WITH r
ORDER BY r.timestamp, r.id
LIMIT $limit
RETURN collect(r.id) AS ids, collect(r.timestamp) AS timestamps, collect(r.value) AS vals
"""

# The newest $limit readings of a window (rolling scans want the recent end), newest first.
READ_WINDOW_NEWEST = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp < $end
WITH r
ORDER BY r.timestamp DESC, r.id DESC
LIMIT $limit
RETURN collect(r.id) AS ids, collect(r.timestamp) AS timestamps, collect(r.value) AS vals
"""

# Keyset paging: strictly after ($after_timestamp, $after_id) in chain order. $start is at
# least $after_timestamp (the store sees to it), so the index range does the paging and the
# NOT only drops the readings at $after_timestamp up to $after_id. (An OR of the two cases
# here went into FalkorDB's index scan and made a page of 100 cost 15 times as much.)
# Columns, as READ_WINDOW: a page costs what the store's own window read costs.
LIST_READINGS_AFTER = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp < $end
  AND NOT (r.timestamp = $after_timestamp AND r.id <= $after_id)
WITH r
ORDER BY r.timestamp, r.id
LIMIT $limit
RETURN collect(r.id) AS ids, collect(r.timestamp) AS timestamps, collect(r.value) AS vals
"""

# Where a window's readings start, when a chart does not say: the buckets are cut from there.
WINDOW_FIRST = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp < $end
RETURN min(r.timestamp) AS first
"""

# A window downsampled in the engine: min, max and count per bucket of $width ms from
# $start, so only the buckets cross the wire (a spike stays a spike: nothing is averaged).
# Integers divide as integers on both engines (and timestamp - $start is never negative).
WINDOW_BUCKETS = """
MATCH (r:MetricReading)
WHERE r.metric_id = $metric_id AND r.timestamp >= $start AND r.timestamp < $end
WITH (r.timestamp - $start) / $width AS bucket, r.value AS value
RETURN bucket, min(value) AS low, max(value) AS high, count(*) AS readings
ORDER BY bucket
"""

# The chain as the graph links it, for invariant checks (tests, `neonomaly check`).
CHAIN_FACTS = """
MATCH (m:Metric {id: $metric_id})
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
OPTIONAL MATCH (r:MetricReading {metric_id: $metric_id})
OPTIONAL MATCH (r)-[:NEXT]->(n:MetricReading)
RETURN latest.id AS latest_id, r.id AS id, r.timestamp AS timestamp, collect(n.id) AS next_ids
"""

# --- anomalies ------------------------------------------------------------------------
# Keyed on a deterministic id (metric, reading, method): a re-run updates, never duplicates.
SAVE_ANOMALIES = """
UNWIND $anomalies AS a
MATCH (r:MetricReading {metric_id: $metric_id, id: a.reading_id})
MERGE (an:Anomaly {id: a.id})
ON CREATE SET an.detected_at = $now
SET an.metric_id = $metric_id, an.reading_id = a.reading_id, an.timestamp = a.timestamp,
    an.value = a.value, an.expected = a.expected, an.lower = a.lower, an.upper = a.upper,
    an.score = a.score, an.method = a.method, an.event_start = a.event_start,
    an.event_end = a.event_end, an.job_id = $job_id, an.probability = a.probability,
    an.kind = a.kind, an.summary = a.summary
MERGE (an)-[:FLAGS]->(r)
RETURN count(an) AS saved
"""

# Keyset paging, as LIST_READINGS_AFTER: strictly after ($after_timestamp, $after_id) in
# (timestamp, id) order, with $start at least $after_timestamp (the store sees to it) so that
# the index range does the paging. The first page passes ($start, ""): every id is above "".
LIST_ANOMALIES = """
MATCH (a:Anomaly)
WHERE a.metric_id = $metric_id AND a.timestamp >= $start AND a.timestamp < $end
  AND NOT (a.timestamp = $after_timestamp AND a.id <= $after_id)
RETURN a.id AS id, a.metric_id AS metric_id, a.reading_id AS reading_id,
       a.timestamp AS timestamp, a.value AS value, a.expected AS expected, a.lower AS lower,
       a.upper AS upper, a.score AS score, a.method AS method, a.event_start AS event_start,
       a.event_end AS event_end, a.detected_at AS detected_at, a.job_id AS job_id,
       a.probability AS probability, a.kind AS kind, a.summary AS summary,
       a.feedback AS feedback, a.feedback_at AS feedback_at
ORDER BY a.timestamp, a.id
LIMIT $limit
"""

# One anomaly, found through its metric's owner; feedback is what a person said of it.
_OWNED_ANOMALY = """
MATCH (a:Anomaly {id: $anomaly_id})
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service)-[:MONITORS]->(:Metric {id: a.metric_id})
"""

_ANOMALY_COLUMNS = """
RETURN a.id AS id, a.metric_id AS metric_id, a.reading_id AS reading_id,
       a.timestamp AS timestamp, a.value AS value, a.expected AS expected, a.lower AS lower,
       a.upper AS upper, a.score AS score, a.method AS method, a.event_start AS event_start,
       a.event_end AS event_end, a.detected_at AS detected_at, a.job_id AS job_id,
       a.feedback AS feedback, a.feedback_at AS feedback_at
"""

GET_ANOMALY = _OWNED_ANOMALY + _ANOMALY_COLUMNS

SET_ANOMALY_FEEDBACK = (
    _OWNED_ANOMALY
    + """
SET a.feedback = $verdict, a.feedback_at = $now
"""
    + _ANOMALY_COLUMNS
)

# --- service dependencies ---------------------------------------------------------------
# (:Service)-[:DEPENDS_ON]->(:Service), only between one owner's services. No row: one of the
# two is not the owner's. MERGE: adding it again changes nothing.
ADD_DEPENDENCY = """
MATCH (u:User {id: $owner_id})-[:OWNS]->(s:Service {id: $service_id})
MATCH (u)-[:OWNS]->(t:Service {id: $other_id})
MERGE (s)-[:DEPENDS_ON]->(t)
RETURN s.id AS id
"""

REMOVE_DEPENDENCY = """
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service {id: $service_id})-[d:DEPENDS_ON]->
      (:Service {id: $other_id})
DELETE d
RETURN count(*) AS deleted
"""

# A service's direct dependencies and dependents, by name: what GET /api/services/{id} shows.
SERVICE_DEPENDENCIES = """
MATCH (:User {id: $owner_id})-[:OWNS]->(s:Service {id: $service_id})
OPTIONAL MATCH (s)-[:DEPENDS_ON]->(d:Service)
WITH s, d
ORDER BY d.name, d.id
WITH s, collect(d.id) AS depends_on_ids, collect(d.name) AS depends_on_names
OPTIONAL MATCH (p:Service)-[:DEPENDS_ON]->(s)
WITH depends_on_ids, depends_on_names, p
ORDER BY p.name, p.id
RETURN depends_on_ids, depends_on_names, collect(p.id) AS dependent_ids,
       collect(p.name) AS dependent_names
"""

# One step of a breadth-first walk over DEPENDS_ON (both directions): the edges touching a
# frontier of services. The caller walks at most INCIDENT_MAX_HOPS steps, so a cycle or a
# large graph never makes a traversal unbounded.
DEPENDENCY_EDGES_OF = """
MATCH (s:Service)
WHERE s.id IN $service_ids
OPTIONAL MATCH (s)-[:DEPENDS_ON]->(d:Service)
WITH s, collect(d.id) AS depends_on
OPTIONAL MATCH (p:Service)-[:DEPENDS_ON]->(s)
RETURN s.id AS id, depends_on, collect(p.id) AS dependents
"""

METRIC_IDS_OF_SERVICES = """
MATCH (s:Service)-[:MONITORS]->(m:Metric)
WHERE s.id IN $service_ids
RETURN m.id AS id
"""

# --- incidents --------------------------------------------------------------------------
# The one statement that decides where a cluster of new anomalies (one metric, close in
# time) belongs, so that two workers never open two incidents for the same events:
#  1. SET on the owner first: on Neo4j this takes the owner's write lock, so concurrent
#     decisions for one owner queue up (FalkorDB runs one write query at a time anyway).
#  2. Keep the anomalies no incident includes yet: a re-run changes nothing.
#  3. An open incident of the owner joins them if one of its members is of a related metric
#     ($related_metric_ids: same service, or linked within INCIDENT_MAX_HOPS) and its event
#     is within $gap of the cluster's [$start, $end]; the oldest such incident wins.
#  4. Otherwise a new incident (id $new_id) opens. Each change bumps `revision`, which the
#     notifier compares with `notified_revision` (an outbox in the graph).
# No row back: nothing was new.
JOIN_OR_OPEN_INCIDENT = """
MATCH (u:User {id: $owner_id})
SET u.incident_seq = coalesce(u.incident_seq, 0) + 1
WITH u
UNWIND $anomaly_ids AS anomaly_id
MATCH (a:Anomaly {id: anomaly_id})
WHERE NOT (:Incident)-[:INCLUDES]->(a)
WITH u, collect(a) AS fresh
WHERE size(fresh) > 0
OPTIONAL MATCH (u)-[:HAS_INCIDENT]->(i:Incident {status: 'open'})-[:INCLUDES]->(m:Anomaly)
WHERE m.metric_id IN $related_metric_ids
  AND m.event_start <= $end + $gap AND m.event_end + $gap >= $start
WITH u, fresh, i
ORDER BY i.opened_at, i.id
WITH u, fresh, head(collect(i.id)) AS found_id
MERGE (inc:Incident {id: coalesce(found_id, $new_id)})
ON CREATE SET inc.status = 'open', inc.opened_at = $now, inc.revision = 0,
              inc.notified_revision = 0, inc.started_at = $start,
              inc.ended_at = $end
MERGE (u)-[:HAS_INCIDENT]->(inc)
FOREACH (a IN fresh | MERGE (inc)-[:INCLUDES]->(a))
SET inc.revision = inc.revision + 1, inc.last_joined_at = $now,
    inc.last_change = CASE WHEN found_id IS NULL THEN 'opened' ELSE 'updated' END,
    inc.started_at = CASE WHEN $start < inc.started_at THEN $start ELSE inc.started_at END,
    inc.ended_at = CASE WHEN $end > inc.ended_at THEN $end ELSE inc.ended_at END
RETURN inc.id AS id, found_id IS NULL AS opened, size(fresh) AS joined
"""

# members is counted, not kept in a property: deleting a metric deletes its anomalies, and
# with them their INCLUDES relationships, without a word to the incidents they were in.
_INCIDENT_COLUMNS = """
RETURN i.id AS id, u.id AS owner_id, i.status AS status, i.opened_at AS opened_at,
       i.last_joined_at AS last_joined_at, i.started_at AS started_at, i.ended_at AS ended_at,
       size([(i)-[:INCLUDES]->(member:Anomaly) | member.id]) AS members,
       i.acknowledged_at AS acknowledged_at,
       i.resolved_at AS resolved_at, i.resolved_by AS resolved_by, i.revision AS revision,
       i.last_change AS last_change
"""

_OWNED_INCIDENT = """
MATCH (u:User {id: $owner_id})-[:HAS_INCIDENT]->(i:Incident {id: $incident_id})
"""

GET_INCIDENT = _OWNED_INCIDENT + _INCIDENT_COLUMNS

# Unowned, for the notifier acting on an incident id.
GET_INCIDENT_BY_ID = (
    """
MATCH (u:User)-[:HAS_INCIDENT]->(i:Incident {id: $incident_id})
"""
    + _INCIDENT_COLUMNS
)

# $status null: every status. Newest first.
LIST_INCIDENTS = (
    """
MATCH (u:User {id: $owner_id})-[:HAS_INCIDENT]->(i:Incident)
WHERE $status IS NULL OR i.status = $status
"""
    + _INCIDENT_COLUMNS
    + """
ORDER BY i.opened_at DESC, i.id DESC
SKIP $offset
LIMIT $limit
"""
)

# Members with their metric and service. kind and probability are read if detection stored
# them (null otherwise), so incidents show what the detector said of each anomaly.
# Metric and service are found by their indexed ids: a pattern through MONITORS made
# FalkorDB walk every service's metrics for each member (1.5 s for 1,000 members).
INCIDENT_MEMBERS = """
MATCH (:Incident {id: $incident_id})-[:INCLUDES]->(a:Anomaly)
WITH a
ORDER BY a.timestamp, a.id
LIMIT $limit
OPTIONAL MATCH (m:Metric {id: a.metric_id})
OPTIONAL MATCH (s:Service {id: m.service_id})
RETURN a.id AS id, a.metric_id AS metric_id, m.name AS metric_name, s.id AS service_id,
       s.name AS service_name, a.timestamp AS timestamp, a.value AS value,
       a.expected AS expected, a.score AS score, a.method AS method,
       a.event_start AS event_start, a.event_end AS event_end, a.kind AS kind,
       a.probability AS probability, a.feedback AS feedback
ORDER BY a.timestamp, a.id
"""

ACKNOWLEDGE_INCIDENT = (
    _OWNED_INCIDENT
    + """
SET i.acknowledged_at = coalesce(i.acknowledged_at, $now)
"""
    + _INCIDENT_COLUMNS
)

# By a person ($resolved_by: their name) or by the sweep; an incident already resolved is
# left as it was. Resolving is a change people are told about (revision + 1).
RESOLVE_INCIDENT = (
    _OWNED_INCIDENT
    + """
FOREACH (_ IN CASE WHEN i.status = 'open' THEN [1] ELSE [] END |
  SET i.status = 'resolved', i.resolved_at = $now, i.resolved_by = $resolved_by,
      i.revision = i.revision + 1, i.last_change = 'resolved')
"""
    + _INCIDENT_COLUMNS
)

# Open incidents nothing joined since $cutoff.
RESOLVE_QUIET_INCIDENTS = """
MATCH (i:Incident {status: 'open'})
WHERE i.last_joined_at <= $cutoff
SET i.status = 'resolved', i.resolved_at = $now, i.resolved_by = 'quiet',
    i.revision = i.revision + 1, i.last_change = 'resolved'
RETURN i.id AS id
"""

# The outbox: incidents with changes people were not told about yet.
INCIDENTS_TO_NOTIFY = """
MATCH (u:User)-[:HAS_INCIDENT]->(i:Incident)
WHERE i.revision > i.notified_revision
RETURN i.id AS id, u.id AS owner_id, i.notified_revision AS notified_revision
ORDER BY i.last_joined_at
LIMIT $limit
"""

MARK_INCIDENT_NOTIFIED = """
MATCH (i:Incident {id: $incident_id})
WHERE i.notified_revision < $revision
SET i.notified_revision = $revision
RETURN i.id AS id
"""

# --- notification channels ---------------------------------------------------------------
_CHANNEL_COLUMNS = """
RETURN c.id AS id, u.id AS owner_id, c.type AS type, c.format AS format, c.url AS url,
       c.secret AS secret, c.created_at AS created_at
"""

CREATE_CHANNEL = (
    """
MATCH (u:User {id: $owner_id})
CREATE (u)-[:HAS_CHANNEL]->(c:NotificationChannel {id: $id, type: $type, format: $format,
                                                   url: $url, secret: $secret,
                                                   created_at: $created_at})
"""
    + _CHANNEL_COLUMNS
)

LIST_CHANNELS = (
    """
MATCH (u:User {id: $owner_id})-[:HAS_CHANNEL]->(c:NotificationChannel)
"""
    + _CHANNEL_COLUMNS
    + "ORDER BY c.created_at, c.id"
)

GET_CHANNEL = (
    """
MATCH (u:User {id: $owner_id})-[:HAS_CHANNEL]->(c:NotificationChannel {id: $channel_id})
"""
    + _CHANNEL_COLUMNS
)

DELETE_CHANNEL = """
MATCH (:User {id: $owner_id})-[:HAS_CHANNEL]->(c:NotificationChannel {id: $channel_id})
DETACH DELETE c
RETURN count(*) AS deleted
"""
