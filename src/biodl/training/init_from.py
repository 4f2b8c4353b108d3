"""Fine-tuning: initialise a new network from a trained model (``train.init_from``, ``--init-from``).

Tensors whose names and shapes match are copied; the output head is re-initialised when the labels differ
(other targets or classes) even if its shape matches; the first ``freeze_layers`` parameterised layers can be
frozen. What happened is recorded in ``transfer.json`` under ``parent`` and in the model card.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from biodl.bundle import load, resolve_bundle_dir
from biodl.errors import ConfigError


def _layers(model: Any) -> list[str]:
    """Names of the modules that own parameters directly, in registration order (input side first)."""
    return [name for name, mod in model.named_modules() if any(True for _ in mod.parameters(recurse=False))]


def head_prefix(model: Any) -> str | None:
    """The module owning the last parameter: the output head."""
    names = [n for n, _ in model.named_parameters()]
    return names[-1].rsplit(".", 1)[0] if names else None


def init_from(
    model: Any,
    source: str,
    *,
    target_names: Sequence[str],
    classes: Sequence[str] | None,
    freeze_layers: int = 0,
) -> dict[str, Any]:
    """Copy matching weights of the model named by ``source`` into ``model`` (in place) and freeze layers.

    Parameters
    ----------
    model
        The freshly built network.
    source
        ``zoo:NAME[@VERSION]``, ``hf://OWNER/REPO``, ``http(s)://...``, a bundle folder or a run directory.
    target_names, classes
        The new run's targets and class labels; the head is re-initialised when they differ from the parent's.
    freeze_layers
        Freeze the first N parameterised layers (``requires_grad = False``).

    Returns
    -------
    dict
        ``{"source", "name", "model", "loaded", "reinitialised", "skipped", "frozen_layers", "frozen", ...}``
    """
    folder = resolve_bundle_dir(source)
    parent = load(folder)
    new_state = model.state_dict()
    old_state = parent.model.state_dict()
    same_labels = list(parent.target_names) == list(target_names) and (parent.classes or None) == (
        list(classes) if classes else None
    )
    head = head_prefix(model)
    loaded, skipped, reinit = [], [], []
    for key, tensor in new_state.items():
        if key not in old_state:
            continue
        if head is not None and key.startswith(head + ".") and not same_labels:
            reinit.append(key)
            continue
        if tuple(old_state[key].shape) != tuple(tensor.shape):
            skipped.append(f"{key} {tuple(old_state[key].shape)} -> {tuple(tensor.shape)}")
            continue
        new_state[key] = old_state[key].clone()
        loaded.append(key)
    if not loaded:
        raise ConfigError(
            f"train.init_from {source}: no tensor of the parent ({parent.meta['model']['name']}) matches the new "
            f"network by name and shape; use the same model architecture and input shape"
        )
    model.load_state_dict(new_state)
    layers = _layers(model)
    if freeze_layers > len(layers) - 1:
        raise ConfigError(f"train.freeze_layers {freeze_layers}: the network has {len(layers)} parameterised layers "
                          "(at most all but the head can be frozen)")  # fmt: skip
    frozen = layers[:freeze_layers]
    for name, mod in model.named_modules():
        if name in frozen:
            for p in mod.parameters(recurse=False):
                p.requires_grad_(False)
    card = (folder / "README.md").read_text(encoding="utf-8") if (folder / "README.md").is_file() else ""
    name = None
    if card.startswith("---\n"):
        import yaml

        try:
            front = yaml.safe_load(card[4 : card.find("\n---\n", 4)]) or {}
            name = (front.get("biodl") or {}).get("name")
        except yaml.YAMLError:
            name = None
    return {
        "source": str(source),
        "name": name,
        "path": str(folder),
        "model": parent.meta["model"]["name"],
        "weights_sha256": parent.meta.get("sha256", {}).get("weights.safetensors"),
        "loaded": len(loaded),
        "reinitialised": reinit,
        "skipped": skipped,
        "same_labels": same_labels,
        "frozen_layers": len(frozen),
        "frozen": frozen,
        "trainable_parameters": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
    }
