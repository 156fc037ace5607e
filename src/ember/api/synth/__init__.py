"""``/v1/ember/synth_jobs``: synthetic training data from documents (an Ember extension)."""
