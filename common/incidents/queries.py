"""Incidents' Cypher: related anomalies grouped, their states, and the notification outbox.

Written by the rules of every query module (see common.graph.queries): the Cypher
subset both Neo4j 5 and FalkorDB run, values only through $parameters, every write one
statement, times as epoch milliseconds, scalar columns only.
"""

# The one statement that decides where a batch of new anomalies (one metric, events close
# in time) belongs, so that two workers never open two incidents for the same events and a
# reading in an incident never opens another:
#  1. SET on the owner first: on Neo4j this takes the owner's write lock, which every
#     statement changing the owner's incidents takes first (resolving too), so they queue
#     and each sees what the one before committed (FalkorDB runs one write at a time).
#  2. Keep the anomalies no incident includes yet (`fresh`): a re-run changes nothing. A
#     muted one (in a maintenance window when it was stored) never joins, not even quietly.
#     An incident holding others of the batch (`home`, an open one first) already holds
#     this event: the same readings judged again (by a scan after a job, another method).
#  3. If `home` is resolved, the fresh anomalies of readings stamped before it was resolved
#     are part of what was resolved: they join it `quiet`ly, without a change people are
#     told about. Later ones are news (`loud`), and go on.
#  4. The loud ones join `home` if it is open; else $into if it is still open (the
#     incident the batch before of the same cluster went to); else the oldest open incident
#     of the owner with a member of a related metric ($related_metric_ids: same service, or
#     linked within INCIDENT_MAX_HOPS) whose event is within $gap of [$start, $end] (the
#     cluster's span). Otherwise a new incident (id $new_id) opens. Each change bumps
#     `revision`, which the notifier compares with `notified_revision` (an outbox).
# The incidents of step 4 are found from the incident side (by id; the open ones by their
# status, index lookups) and then checked to be the owner's, never by walking the owner's
# HAS_INCIDENT relationships: those lead to every incident the owner ever had, resolved
# ones included, and each join held the single writer while it walked them (an owner with
# 100,000 resolved incidents: 300 ms a join, tests/bench/bench_incidents.py).
# INCLUDES is created, not merged: only fresh anomalies get one, under the owner's lock.
# No row back: nothing was news.
JOIN_OR_OPEN_INCIDENT = """
MATCH (u:User {id: $owner_id})
SET u.incident_seq = coalesce(u.incident_seq, 0) + 1
WITH u
UNWIND $anomaly_ids AS anomaly_id
MATCH (a:Anomaly {id: anomaly_id})
WHERE coalesce(a.muted, false) = false
OPTIONAL MATCH (held:Incident)-[:INCLUDES]->(a)
WITH u, collect(CASE WHEN held IS NULL THEN a END) AS fresh, collect(held) AS holders
WHERE size(fresh) > 0
WITH u, fresh, head([h IN holders WHERE h.status = 'open'] + holders) AS home
WITH u, home,
     [a IN fresh WHERE home.status = 'resolved' AND a.timestamp <= home.resolved_at] AS quiet,
     [a IN fresh WHERE home IS NULL OR home.status = 'open' OR a.timestamp > home.resolved_at]
     AS loud
FOREACH (a IN quiet | CREATE (home)-[:INCLUDES]->(a))
WITH u, home, loud
WHERE size(loud) > 0
OPTIONAL MATCH (into:Incident {id: $into})
WHERE into.status = 'open' AND (u)-[:HAS_INCIDENT]->(into)
WITH u, home, loud, head(collect(into.id)) AS into_id
OPTIONAL MATCH (i:Incident {status: 'open'})-[:INCLUDES]->(m:Anomaly)
WHERE into_id IS NULL AND (home IS NULL OR home.status <> 'open')
  AND (u)-[:HAS_INCIDENT]->(i)
  AND m.metric_id IN $related_metric_ids
  AND m.event_start <= $end + $gap AND m.event_end + $gap >= $start
WITH u, home, loud, into_id, i
ORDER BY i.opened_at, i.id
WITH u, home, loud, into_id, head(collect(i.id)) AS related_id
WITH u, loud,
     coalesce(CASE WHEN home.status = 'open' THEN home.id END, into_id, related_id) AS found_id
MERGE (inc:Incident {id: coalesce(found_id, $new_id)})
ON CREATE SET inc.status = 'open', inc.opened_at = $now, inc.revision = 0,
              inc.notified_revision = 0, inc.started_at = $start,
              inc.ended_at = $end
MERGE (u)-[:HAS_INCIDENT]->(inc)
FOREACH (a IN loud | CREATE (inc)-[:INCLUDES]->(a))
SET inc.revision = inc.revision + 1, inc.last_joined_at = $now,
    inc.last_change = CASE WHEN found_id IS NULL THEN 'opened' ELSE 'updated' END,
    inc.started_at = CASE WHEN $start < inc.started_at THEN $start ELSE inc.started_at END,
    inc.ended_at = CASE WHEN $end > inc.ended_at THEN $end ELSE inc.ended_at END
RETURN inc.id AS id, found_id IS NULL AS opened, size(loud) AS joined
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

# The incident by its id, then checked to be the owner's: a pattern from the owner walks
# every incident they ever had (see JOIN_OR_OPEN_INCIDENT).
_OWNED_INCIDENT = """
MATCH (u:User {id: $owner_id}), (i:Incident {id: $incident_id})
WHERE (u)-[:HAS_INCIDENT]->(i)
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

# A page of incidents' metrics, each summed up over the incident's oldest $per_incident
# members (the ones INCIDENT_MEMBERS reads for the detail, so the list ranks the same top
# cause): one read for the page, not one per incident.
INCIDENTS_ACTIVITY = """
MATCH (i:Incident)-[:INCLUDES]->(a:Anomaly)
WHERE i.id IN $incident_ids
WITH i, a
ORDER BY a.timestamp, a.id
WITH i, collect(a)[0..$per_incident] AS oldest
UNWIND oldest AS a
WITH i, a.metric_id AS metric_id, min(a.timestamp) AS onset, max(a.score) AS peak_score,
     count(a) AS anomalies,
     sum(CASE WHEN a.feedback = 'false_positive' THEN 0 ELSE 1 END) AS undismissed
OPTIONAL MATCH (m:Metric {id: metric_id})
OPTIONAL MATCH (s:Service {id: m.service_id})
RETURN i.id AS incident_id, metric_id, m.name AS metric_name, s.id AS service_id,
       s.name AS service_name, onset, peak_score, anomalies, undismissed
"""

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

# By a person ($resolved_by: their name); an incident already resolved is left as it was.
# Resolving is a change people are told about (revision + 1). The owner's lock first, as
# JOIN_OR_OPEN_INCIDENT takes it: a join in flight commits before, and one after sees the
# incident resolved (else, on Neo4j, anomalies joined a resolved incident and paged nobody).
RESOLVE_INCIDENT = (
    """
MATCH (u:User {id: $owner_id})
SET u.incident_seq = coalesce(u.incident_seq, 0) + 1
WITH u
MATCH (i:Incident {id: $incident_id})
WHERE (u)-[:HAS_INCIDENT]->(i)
FOREACH (_ IN CASE WHEN i.status = 'open' THEN [1] ELSE [] END |
  SET i.status = 'resolved', i.resolved_at = $now, i.resolved_by = $resolved_by,
      i.revision = i.revision + 1, i.last_change = 'resolved')
"""
    + _INCIDENT_COLUMNS
)

# Open incidents nothing joined since $cutoff. Each owner's lock first, as in
# RESOLVE_INCIDENT; the collect waits for all of them before the incidents are read again
# (a join that committed meanwhile moved last_joined_at on: that incident stays open).
RESOLVE_QUIET_INCIDENTS = """
MATCH (owner:User)-[:HAS_INCIDENT]->(quiet:Incident {status: 'open'})
WHERE quiet.last_joined_at <= $cutoff
WITH DISTINCT owner
SET owner.incident_seq = coalesce(owner.incident_seq, 0) + 1
WITH collect(owner) AS owners
UNWIND owners AS u
MATCH (i:Incident {status: 'open'})
WHERE i.last_joined_at <= $cutoff AND (u)-[:HAS_INCIDENT]->(i)
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
