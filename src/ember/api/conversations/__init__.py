"""``/v1/conversations``: conversations and their items."""
