"""panfw bundled plugin: deepfusion."""
