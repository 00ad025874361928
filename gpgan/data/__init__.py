"""Data stages: download, crop, demo dataset, package photos (mvtb-data), composites,
torch Dataset."""
