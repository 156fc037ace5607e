"""The Ember console: a web UI served by ``ember serve`` at ``/``, a client of the public API."""
