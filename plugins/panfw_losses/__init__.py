"""panfw bundled plugin: losses."""
