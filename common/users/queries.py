"""Users' Cypher: created with a hashed API key, found by it.

Written by the rules of every query module (see common.graph.queries): the Cypher
subset both Neo4j 5 and FalkorDB run, values only through $parameters, every write one
statement, times as epoch milliseconds, scalar columns only.
"""

CREATE_USER = """
CREATE (u:User {id: $id, name: $name, api_key_hash: $api_key_hash, created_at: $created_at})
RETURN u.id AS id, u.name AS name, u.created_at AS created_at
"""

FIND_USER_BY_KEY_HASH = """
MATCH (u:User {api_key_hash: $api_key_hash})
RETURN u.id AS id, u.name AS name, u.created_at AS created_at
"""
