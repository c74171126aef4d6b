"""Notification channels' Cypher (deliveries live in Redis).

Written by the rules of every query module (see common.graph.queries): the Cypher
subset both Neo4j 5 and FalkorDB run, values only through $parameters, every write one
statement, times as epoch milliseconds, scalar columns only.
"""

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
