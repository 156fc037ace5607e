"""POST /v1/chat/completions: router (thin), protocol (wire models), serving."""
