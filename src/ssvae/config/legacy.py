"""The earlier system's config spellings, mapped onto this schema (docs/configuration.md, "How configs are read")."""

from __future__ import annotations

import copy

from ssvae.config.types import ConfigError

# Keys the earlier system accepted but never implemented: only their off value is supported.
UNSUPPORTED_UNLESS_OFF = {
    "top_m_gating": 0,
    "soft_embedding_warmup_epochs": 0,
    "use_contrastive": False,
    "contrastive_weight": 0.0,
    "gumbel_temperature_decay": 0.0,
    "xla_flags": None,
}

# The earlier system's `data.dataset_variant` values.
LEGACY_DATASET_VARIANTS = {"digits": "digits", "mnist_digits": "digits", "fallback": "digits", "mnist": "mnist"}


def _dataset_variant(raw: dict, file: str, warnings: list[str]) -> list[ConfigError]:
    """`data.dataset_variant` -> `data.dataset`."""
    data = raw.get("data")
    if not (isinstance(data, dict) and "dataset_variant" in data):
        return []
    variant = str(data.pop("dataset_variant")).lower()
    if variant not in LEGACY_DATASET_VARIANTS:
        return [ConfigError(file, "data.dataset_variant", variant, "unknown dataset variant",
                            allowed=", ".join(LEGACY_DATASET_VARIANTS))]
    mapped = LEGACY_DATASET_VARIANTS[variant]
    if "dataset" in data and data["dataset"] != mapped:
        warnings.append(f"{file}: data.dataset_variant={variant!r} overrides data.dataset={data['dataset']!r}")
    data["dataset"] = mapped
    warnings.append(f"{file}: data.dataset_variant is the earlier system's key; read as data.dataset={mapped!r}")
    return []


def _model_val_split(raw: dict, file: str, warnings: list[str]) -> None:
    """`model.val_split` -> `data.val_split` (an explicit `data.val_split` wins)."""
    model = raw.get("model")
    if not (isinstance(model, dict) and "val_split" in model):
        return
    value = model.pop("val_split")
    raw.setdefault("data", {})
    if isinstance(raw["data"], dict):
        raw["data"].setdefault("val_split", value)
    warnings.append(f"{file}: model.val_split is the earlier system's key; read as data.val_split")


def normalise_legacy(raw: dict, file: str, warnings: list[str]) -> tuple[dict, list[ConfigError]]:
    """Map the earlier system's spellings onto this schema; returns a copy and the errors found."""
    raw = copy.deepcopy(raw)
    errors = _dataset_variant(raw, file, warnings)
    _model_val_split(raw, file, warnings)
    return raw, errors
