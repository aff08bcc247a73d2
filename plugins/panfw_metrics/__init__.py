"""panfw bundled plugin: metrics."""
