"""Use cases. Each owns its transactions; none imports FastAPI."""
