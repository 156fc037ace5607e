"""``/v1/ember/audit``: the audit chain over HTTP (admin key)."""
