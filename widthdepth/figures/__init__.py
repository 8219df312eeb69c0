"""Figures: image grids (grids) and the report's charts (charts)."""
