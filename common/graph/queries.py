"""The graph's own Cypher: schema statements per engine and the ping.

Every domain keeps its queries beside its repository (`common/<domain>/queries.py`), as
named UPPER_SNAKE constants, all written by these rules:
- the subset both Neo4j 5 and FalkorDB execute (each constant is linted by Neo4j's semantic
  analyzer in the test suite and run on FalkorDB by the contract tests);
- values only through $parameters;
- every write one statement: FalkorDB has no multi-statement transactions, and one
  statement is one transaction on Neo4j too;
- times as integer epoch milliseconds; scalar columns, never nodes, so both engines'
  results look alike.
"""

# Neo4j: constraints give uniqueness (and the index behind it); composite keys where an
# id is only unique within its parent.
NEO4J_SCHEMA: tuple[str, ...] = (
    "CREATE CONSTRAINT user_id IF NOT EXISTS FOR (u:User) REQUIRE u.id IS UNIQUE",
    "CREATE CONSTRAINT user_key IF NOT EXISTS FOR (u:User) REQUIRE u.api_key_hash IS UNIQUE",
    "CREATE CONSTRAINT service_id IF NOT EXISTS FOR (s:Service) REQUIRE s.id IS UNIQUE",
    "CREATE CONSTRAINT service_name IF NOT EXISTS FOR (s:Service) "
    "REQUIRE (s.owner_id, s.name) IS UNIQUE",
    "CREATE CONSTRAINT metric_id IF NOT EXISTS FOR (m:Metric) REQUIRE m.id IS UNIQUE",
    "CREATE CONSTRAINT metric_name IF NOT EXISTS FOR (m:Metric) "
    "REQUIRE (m.service_id, m.name) IS UNIQUE",
    "CREATE CONSTRAINT reading_id IF NOT EXISTS FOR (r:MetricReading) "
    "REQUIRE (r.metric_id, r.id) IS UNIQUE",
    "CREATE CONSTRAINT anomaly_id IF NOT EXISTS FOR (a:Anomaly) REQUIRE a.id IS UNIQUE",
    "CREATE CONSTRAINT metric_lock IF NOT EXISTS FOR (l:MetricLock) REQUIRE l.metric_id IS UNIQUE",
    "CREATE INDEX reading_window IF NOT EXISTS FOR (r:MetricReading) ON (r.metric_id, r.timestamp)",
    "CREATE INDEX anomaly_window IF NOT EXISTS FOR (a:Anomaly) ON (a.metric_id, a.timestamp)",
    "CREATE CONSTRAINT chunk_id IF NOT EXISTS FOR (c:ReadingChunk) REQUIRE c.id IS UNIQUE",
    "CREATE INDEX chunk_window IF NOT EXISTS FOR (c:ReadingChunk) "
    "ON (c.metric_id, c.first_timestamp)",
    "CREATE CONSTRAINT incident_id IF NOT EXISTS FOR (i:Incident) REQUIRE i.id IS UNIQUE",
    "CREATE INDEX incident_status IF NOT EXISTS FOR (i:Incident) ON (i.status)",
    "CREATE CONSTRAINT channel_id IF NOT EXISTS FOR (c:NotificationChannel) REQUIRE c.id IS UNIQUE",
    # A window's reach into the past finds it by its id alone (common.maintenance.reach).
    "CREATE CONSTRAINT maintenance_window_id IF NOT EXISTS FOR (w:MaintenanceWindow) "
    "REQUIRE w.id IS UNIQUE",
    # The look for lost reaches: only windows whose reach is pending carry the time.
    "CREATE INDEX maintenance_window_reach IF NOT EXISTS FOR (w:MaintenanceWindow) "
    "ON (w.reach_requested_at)",
    # The incidents a window's mute took members from (RESOLVE_OR_UPDATE_MUTED_INCIDENTS).
    "CREATE INDEX incident_members_muted_by IF NOT EXISTS FOR (i:Incident) ON (i.members_muted_by)",
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
    # A statement of its own, so that a store made before it gets it added on start.
    "CREATE INDEX FOR (m:Metric) ON (m.name)",
    "CREATE INDEX FOR (r:MetricReading) ON (r.metric_id, r.timestamp, r.id)",
    "CREATE INDEX FOR (a:Anomaly) ON (a.id, a.metric_id, a.timestamp)",
    "CREATE INDEX FOR (c:ReadingChunk) ON (c.id, c.metric_id, c.first_timestamp)",
    "CREATE INDEX FOR (l:MetricLock) ON (l.metric_id)",
    "CREATE INDEX FOR (i:Incident) ON (i.id, i.status)",
    "CREATE INDEX FOR (c:NotificationChannel) ON (c.id)",
    # A window's reach into the past finds it by its id alone (common.maintenance.reach).
    "CREATE INDEX FOR (w:MaintenanceWindow) ON (w.id)",
    # The look for lost reaches (PENDING_REACHES): only windows whose reach is pending carry
    # the time. A statement of its own, so that a store made before it gets it added on start.
    "CREATE INDEX FOR (w:MaintenanceWindow) ON (w.reach_requested_at)",
    # The incidents a window's mute took members from (RESOLVE_OR_UPDATE_MUTED_INCIDENTS). A
    # statement of its own, so that a store made before it gets it added on start.
    "CREATE INDEX FOR (i:Incident) ON (i.members_muted_by)",
)

FALKORDB_INDEXED_PROPERTIES = "CALL db.indexes() YIELD label, properties RETURN label, properties"

PING = "RETURN 1 AS ok"


# --- what a metric owns, deleted in bounded batches -------------------------------------
# Every node a metric owns carries its metric_id (indexed on both engines), so that deleting
# a metric, or a service's metrics, deletes them a batch at a time: a statement deletes at
# most $batch nodes (WRITE_BATCH), then other writers get their turn. A metric's own node is
# deleted last, by its domain's statement, once none of these is left.
# Readings (raw, then compacted) go first: an anomaly is only ever saved on a reading that
# is still there, so none appears behind the anomalies' pass. A new kind of child is one
# more line here, its label in the MATCH (Cypher takes no label parameters, and each
# statement stays a literal).
_DELETE_A_BATCH = """
WITH child
LIMIT $batch
DETACH DELETE child
RETURN count(*) AS deleted
"""

DELETE_METRIC_CHILDREN: tuple[str, ...] = (
    "MATCH (child:MetricReading {metric_id: $metric_id})" + _DELETE_A_BATCH,
    "MATCH (child:ReadingChunk {metric_id: $metric_id})" + _DELETE_A_BATCH,
    "MATCH (child:Anomaly {metric_id: $metric_id})" + _DELETE_A_BATCH,
)
