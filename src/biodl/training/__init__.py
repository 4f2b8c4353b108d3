"""Training: the Lightning module and trainer, callbacks, diagnostics, ensembles, pre-training, experiment trackers."""
