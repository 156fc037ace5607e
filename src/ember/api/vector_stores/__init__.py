"""``/v1/vector_stores``."""
