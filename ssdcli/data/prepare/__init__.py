"""Preparing a data set: layout detection, splits, duplicates, statistics, the manifest."""
