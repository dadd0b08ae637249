"""Several gateway instances on one database: the leader lease and the shared event bus."""
