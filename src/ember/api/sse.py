"""Server-sent events: headers shared by every streaming endpoint."""

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
