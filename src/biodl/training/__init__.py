"""The training layer: the Lightning loop (:mod:`~biodl.training.fit`), losses, optimisers, callbacks,
ensembles, pre-training and learning-curve diagnostics. Submodules are imported on use (they load Lightning)."""
