"""panfw bundled plugin: classic."""
