"""Wire models of requests and responses."""
