"""Fuzz targets for the sans-IO core (see fuzz/README.md). Not part of the installed package."""
