"""HTTP only: auth, request parsing, thin routes, SSE framing."""
