"""Users' Cypher: created with a hashed API key, found by it.

Written by the rules of every query module (see common.graph.queries): the Cypher
subset both Neo4j 5 and FalkorDB run, values only through $parameters, every write one
statement, times as epoch milliseconds, scalar columns only.
"""

# Names are unique, so that a name (an incident's resolved_by, say) says who: a name taken
# is a clash (clashes > 0) and nothing is created. No Neo4j constraint backs it: one would
# refuse to be created on a database that already holds two users of one name, and users
# are made one at a time by an administrator (`neonomaly create-user`).
CREATE_USER = """
OPTIONAL MATCH (existing:User {name: $name})
WITH count(existing) AS clashes
FOREACH (_ IN CASE WHEN clashes = 0 THEN [1] ELSE [] END |
  CREATE (:User {id: $id, name: $name, api_key_hash: $api_key_hash, created_at: $created_at}))
RETURN clashes
"""

GET_USER = """
MATCH (u:User {id: $id})
RETURN u.id AS id, u.name AS name, u.created_at AS created_at
"""

FIND_USER_BY_KEY_HASH = """
MATCH (u:User {api_key_hash: $api_key_hash})
RETURN u.id AS id, u.name AS name, u.created_at AS created_at
"""
