"""Datasets: where they come from (sources), getting them (fetch), decoding them (readers), splitting them (split)."""
