"""/v1/responses: router (thin), protocol (wire models), serving (objects and SSE events)."""
