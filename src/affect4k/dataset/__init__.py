"""The database as a dataset: the release folder, rehydrating it, and takedowns."""
