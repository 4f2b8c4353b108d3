"""The training layer: the Lightning loop (:mod:`~biodl.training.fit`), losses, optimisers, callbacks,
ensembles, pre-training, learning-curve diagnostics and experiment trackers.

Submodules are imported on use (they load Lightning)."""
