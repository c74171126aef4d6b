"""Metrics' and readings' Cypher: a service's metrics, each metric's chain of readings.

Written by the rules of every query module (see common.graph.queries): the Cypher
subset both Neo4j 5 and FalkorDB run, values only through $parameters, every write one
statement, times as epoch milliseconds, scalar columns only.
"""

_METRIC_COLUMNS = """
RETURN m.id AS id, m.name AS name, m.description AS description, m.service_id AS service_id,
       m.created_at AS created_at, latest.id AS latest_id, latest.timestamp AS latest_timestamp,
       latest.value AS latest_value, m.detection AS detection
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

# A metric's own detection settings, kept as one JSON string (MetricDetection): a scalar
# property both engines store, read back whole. No row: not the owner's metric.
SET_METRIC_DETECTION = (
    """
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service)-[:MONITORS]->(m:Metric {id: $metric_id})
SET m.detection = $detection
WITH m
OPTIONAL MATCH (m)-[:LATEST_READING]->(latest:MetricReading)
"""
    + _METRIC_COLUMNS
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

METRIC_IDS_OF_SERVICES = """
MATCH (s:Service)-[:MONITORS]->(m:Metric)
WHERE s.id IN $service_ids
RETURN m.id AS id
"""


# --- readings --------------------------------------------------------------------------
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
# least $after_timestamp (keyset_page sees to it), so the index range does the paging and the
# NOT only drops the readings at $after_timestamp up to $after_id. (An OR of the two cases
# here went into FalkorDB's index scan and made a page of 100 cost 15 times as much.)
# Columns, as READ_WINDOW: a page costs what a window read costs.
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
