"""GET /v1/models and Ember's model administration endpoints."""
