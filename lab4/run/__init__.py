"""A run: its folder (RunDir), its identity, its pipeline from config to summary.json, what follows
training."""
