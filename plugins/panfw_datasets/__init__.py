"""panfw bundled plugin: datasets."""
