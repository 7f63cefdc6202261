"""Persistence: tables, queries and the engine. Imported only by services."""
