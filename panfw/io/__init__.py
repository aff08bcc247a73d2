"""Reading and writing what users hand panfw: checkpoints, run directories, exported files, GeoTIFF pairs."""
