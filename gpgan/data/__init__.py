"""Data stages: download, crop, demo dataset, composites, torch Dataset."""
