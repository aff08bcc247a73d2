"""panfw bundled plugin: pantiny."""
