"""``POST /v1/moderations``: OpenAI-shaped moderation with Ember's injection verdict."""
