"""Services' Cypher: a user's services and the DEPENDS_ON links between them.

Written by the rules of every query module (see common.graph.queries): the Cypher
subset both Neo4j 5 and FalkorDB run, values only through $parameters, every write one
statement, times as epoch milliseconds, scalar columns only.
"""

_SERVICE_COLUMNS = """
RETURN s.id AS id, s.name AS name, s.description AS description, u.id AS owner_id,
       s.created_at AS created_at
"""

# One owner's services have distinct names: a name taken is a clash (clashes > 0), seen by
# the statement itself; two requests at the same moment on Neo4j are told apart by the
# service_name constraint on (owner_id, name) (services made before it carry no owner_id:
# the statement's look covers them). No row: no such user.
CREATE_SERVICE = """
MATCH (u:User {id: $owner_id})
OPTIONAL MATCH (u)-[:OWNS]->(existing:Service {name: $name})
WITH u, count(existing) AS clashes
FOREACH (_ IN CASE WHEN clashes = 0 THEN [1] ELSE [] END |
  CREATE (u)-[:OWNS]->(:Service {id: $id, name: $name, description: $description,
                                 owner_id: $owner_id, created_at: $created_at}))
RETURN clashes
"""

# A service being deleted (see BEGIN_DELETE_SERVICE) is not found by any read or edit.
LIST_SERVICES = (
    """
MATCH (u:User {id: $owner_id})-[:OWNS]->(s:Service)
WHERE s.deleting IS NULL
"""
    + _SERVICE_COLUMNS
    + "ORDER BY s.created_at, s.id"
)

GET_SERVICE = (
    """
MATCH (u:User {id: $owner_id})-[:OWNS]->(s:Service {id: $service_id})
WHERE s.deleting IS NULL
"""
    + _SERVICE_COLUMNS
)

# $set_description distinguishes "leave it" from "clear it" (a PATCH with null). A new name
# another of the owner's services has is a clash, as in CREATE_SERVICE; the owner_id set
# here brings a service made before it under the constraint.
UPDATE_SERVICE = """
MATCH (u:User {id: $owner_id})-[:OWNS]->(s:Service {id: $service_id})
WHERE s.deleting IS NULL
OPTIONAL MATCH (u)-[:OWNS]->(other:Service {name: $name})
WHERE other.id <> s.id
WITH s, count(other) AS clashes
FOREACH (_ IN CASE WHEN clashes = 0 THEN [1] ELSE [] END |
  SET s.name = coalesce($name, s.name), s.owner_id = $owner_id,
      s.description = CASE WHEN $set_description THEN $description ELSE s.description END)
RETURN clashes
"""

# --- deleting a service ------------------------------------------------------------------
# In steps, as a metric is (see BEGIN_DELETE_METRIC in common.metrics.queries): marked
# `deleting` (gone for every read, refused to every write), each metric's data deleted a
# batch at a time (common.graph.deletes), then the metrics and the service.
# BEGIN_DELETE_SERVICE takes its locks in the order every writer uses, so that a metric
# created, or readings appended, meanwhile are either deleted with it or refused, never
# left behind as orphans (on Neo4j: read committed, row locks):
#  1. The service (SET): CREATE_METRIC locks it too and then reads it again, so a metric
#     committed before is seen here, and one after is refused.
#  2. Each metric's MetricLock, then the metric, in APPEND_READINGS' order (so the two never
#     deadlock): an append holding them commits first and its readings are then deleted
#     with the rest; one that comes after finds its metric deleting and stores nothing.
# coalesce: FalkorDB fails on a null node in a later MATCH (a service without metrics);
# no metric id is empty. FalkorDB runs one write at a time, so its order is moot.
# No row: not the owner's service (one already marked is: its delete is carried on).
BEGIN_DELETE_SERVICE = """
MATCH (:User {id: $owner_id})-[:OWNS]->(s:Service {id: $service_id})
SET s.deleting = true, s.deleting_since = coalesce(s.deleting_since, $now)
WITH s
OPTIONAL MATCH (s)-[:MONITORS]->(m:Metric)
WITH s, m, coalesce(m.id, '') AS metric_id
OPTIONAL MATCH (held:MetricLock {metric_id: metric_id})
FOREACH (l IN CASE WHEN held IS NULL THEN [] ELSE [held] END | SET l.deleting = true)
FOREACH (x IN CASE WHEN m IS NULL THEN [] ELSE [m] END |
  SET x.deleting = true, x.deleting_since = coalesce(x.deleting_since, $now))
RETURN s.id AS id, count(m) AS metrics
"""

# The metrics of a service being deleted, whose data is deleted next.
METRICS_OF_DELETED_SERVICE = """
MATCH (s:Service {id: $service_id})-[:MONITORS]->(m:Metric)
WHERE s.deleting
RETURN m.id AS id
"""

# Last, once no metric of the service owns anything: the metrics, their locks, the service.
FINISH_DELETE_SERVICE = """
MATCH (s:Service {id: $service_id})
WHERE s.deleting
OPTIONAL MATCH (s)-[:MONITORS]->(m:Metric)
WITH s, collect(m) AS metrics, collect(m.id) AS metric_ids
OPTIONAL MATCH (lock:MetricLock)
WHERE lock.metric_id IN metric_ids
WITH s, metrics, collect(lock) AS locks
FOREACH (l IN locks | DELETE l)
FOREACH (m IN metrics | DETACH DELETE m)
DETACH DELETE s
RETURN count(*) AS deleted
"""

# Deletes left unfinished: marked before $before (a delete in progress is left to its caller).
SERVICES_BEING_DELETED = """
MATCH (s:Service)
WHERE s.deleting AND s.deleting_since <= $before
RETURN s.id AS id
ORDER BY s.deleting_since
LIMIT $limit
"""


# --- dependencies ----------------------------------------------------------------------
# (:Service)-[:DEPENDS_ON]->(:Service), only between one owner's services. No row: one of the
# two is not the owner's. MERGE: adding it again changes nothing.
ADD_DEPENDENCY = """
MATCH (u:User {id: $owner_id})-[:OWNS]->(s:Service {id: $service_id})
MATCH (u)-[:OWNS]->(t:Service {id: $other_id})
WHERE s.deleting IS NULL AND t.deleting IS NULL
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
