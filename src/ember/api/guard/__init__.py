"""``/v1/ember/guard/*``: PII analysis over HTTP."""
