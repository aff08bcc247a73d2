"""panfw bundled plugin: baselines."""
