"""One chat turn as an async generator of typed events: no database, no HTTP."""
