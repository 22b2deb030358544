"""Experiment configs: schema, defaults, legacy keys, semantic rules, sweeps and readable errors.

`load_experiments(path)` is the one entry point: it reads a YAML file, expands its sweep, and returns one
`Plan` per run, each either valid (with the effective config, every default resolved) or carrying the list
of `ConfigError`s that say what is wrong.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import hashlib
import itertools
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import naming

SECTIONS = ("experiment", "data", "model", "evaluation", "report")
MIXTURE_PRIORS = ("mixture", "vamp", "geometric_mog")
CONDITIONABLE_PRIORS = ("mixture", "geometric_mog")

# dataset -> (images, classes, image height/width, has an official test split)
DATASETS = {
    "digits": {"size": 1797, "classes": 10, "hw": (8, 8), "official_test": False},
    "mnist5k": {"size": 5000, "classes": 10, "hw": (28, 28), "official_test": False},
    "mnist": {"size": 60000, "classes": 10, "hw": (28, 28), "official_test": True},
    "fashion_mnist": {"size": 60000, "classes": 10, "hw": (28, 28), "official_test": True},
}

# Keys the earlier system accepted but never implemented: only their off value is supported.
UNSUPPORTED_UNLESS_OFF = {
    "top_m_gating": 0,
    "soft_embedding_warmup_epochs": 0,
    "use_contrastive": False,
    "contrastive_weight": 0.0,
    "gumbel_temperature_decay": 0.0,
    "xla_flags": None,
}

# τ counts a τ-classifier starts with on its component-to-class assignment when the config leaves them unset:
# enough that the assignment outlasts the first epochs' labeled counts (about 100 per component per epoch with
# 100 labels and labeled_batch_size 32), so the labels move the components rather than rename them.
DEFAULT_TAU_INIT_COUNTS = 1000.0

# Labeled images added to every training batch when the config leaves `labeled_batch_size` unset.
DEFAULT_LABELED_BATCH_SIZE = 32


def default_augment_shift(image_hw: tuple[int, int]) -> int:
    """Random-shift range used when `data.augment_shift` is unset: 2 pixels for 28×28 images, none for the 8×8
    digits (one pixel is an eighth of the image there)."""
    return 2 if min(image_hw) >= 28 else 0


# The earlier system's `data.dataset_variant` values.
LEGACY_DATASET_VARIANTS = {"digits": "digits", "mnist_digits": "digits", "fallback": "digits", "mnist": "mnist"}


@dataclasses.dataclass(frozen=True)
class ConfigError:
    """One thing wrong with a config: where, what and what is allowed."""

    file: str
    key: str
    value: Any
    message: str
    allowed: str | None = None
    suggestion: str | None = None

    def __str__(self) -> str:
        text = f"{self.file}: {self.key or '<top level>'}: {self.message}"
        if self.value is not None or self.key:
            text += f" (got {self.value!r})"
        if self.allowed:
            text += f"; allowed: {self.allowed}"
        if self.suggestion:
            text += f"; did you mean '{self.suggestion}'?"
        return text

    def to_dict(self) -> dict:
        return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else repr(v))
                for k, v in dataclasses.asdict(self).items()} | {"text": str(self)}


class ConfigErrors(Exception):
    """Raised with every error found in a config, so a user fixes them all at once."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


@dataclasses.dataclass(frozen=True)
class ExperimentInfo:
    name: str
    description: str
    tags: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: str
    path: str | None
    num_samples: int | None
    num_labeled: int
    val_split: float
    test_split: float
    seed: int
    augment_shift: int | None = 0


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Every model and training knob; see the schema for meanings and SPEC section 6 for formulas."""

    num_classes: int
    latent_dim: int
    latent_layout: str
    hidden_dims: tuple[int, ...]
    encoder_type: str
    decoder_type: str
    classifier_type: str
    input_hw: tuple[int, int]
    reconstruction_loss: str
    recon_weight: float
    kl_weight: float
    label_weight: float
    learning_rate: float
    batch_size: int
    labeled_batch_size: int
    max_epochs: int
    patience: int
    monitor_metric: str
    random_seed: int
    grad_clip_norm: float | None
    weight_decay: float
    l1_weight: float
    dropout_rate: float
    prior_type: str
    num_components: int
    kl_c_weight: float
    kl_c_anneal_epochs: int
    dirichlet_alpha: float | None
    dirichlet_weight: float
    learnable_pi: bool | None
    component_diversity_weight: float
    component_embedding_dim: int
    decoder_conditioning: str
    use_component_aware_decoder: bool
    mixture_history_log_every: int
    c_regularizer: str
    c_logit_prior_weight: float
    c_logit_prior_mean: float
    c_logit_prior_sigma: float
    use_tau_classifier: bool
    tau_smoothing_alpha: float
    tau_init_counts: float
    use_heteroscedastic_decoder: bool
    sigma_min: float
    sigma_max: float
    use_gumbel_softmax: bool
    gumbel_temperature: float
    gumbel_temperature_min: float
    gumbel_temperature_anneal_epochs: int
    use_straight_through_gumbel: bool
    vamp_num_samples_kl: int
    vamp_pseudo_lr_scale: float
    vamp_pseudo_init_method: str
    geometric_arrangement: str
    geometric_radius: float
    top_m_gating: int
    soft_embedding_warmup_epochs: int
    use_contrastive: bool
    contrastive_weight: float
    gumbel_temperature_decay: float
    xla_flags: str | None

    @property
    def is_mixture(self) -> bool:
        """True for priors with a discrete component channel c (mixture, vamp, geometric_mog)."""
        return self.prior_type in MIXTURE_PRIORS

    @property
    def has_component_embeddings(self) -> bool:
        """True for priors with a π and component embeddings e_c that can condition the decoder (mixture,
        geometric_mog)."""
        return self.prior_type in CONDITIONABLE_PRIORS

    @property
    def is_vamp(self) -> bool:
        return self.prior_type == "vamp"

    @property
    def learns_pi(self) -> bool:
        """π = softmax(π-logits) is trained (mixture, geometric_mog): `learnable_pi`, which resolves to true
        beside a Dirichlet α."""
        if not self.has_component_embeddings:
            return False
        return bool(self.learnable_pi) if self.learnable_pi is not None else self.dirichlet_alpha is not None

    @property
    def uses_dirichlet(self) -> bool:
        """The Dirichlet(α) MAP penalty on π is part of the loss."""
        return self.has_component_embeddings and self.dirichlet_alpha is not None

    @property
    def is_conv(self) -> bool:
        """A conv encoder or decoder is involved."""
        return "conv" in (self.encoder_type, self.decoder_type)

    @property
    def num_pixels(self) -> int:
        return self.input_hw[0] * self.input_hw[1]


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    split: str
    batch_size: int
    num_plot_samples: int
    baseline: bool
    skip_metrics: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    dpi: int
    formats: tuple[str, ...]
    skip_plots: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A validated experiment: typed sections built from the effective config."""

    experiment: ExperimentInfo
    data: DataConfig
    model: ModelConfig
    evaluation: EvaluationConfig
    report: ReportConfig

    @classmethod
    def from_effective(cls, effective: dict) -> "Experiment":
        def build(kind, section):
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in effective[section].items()}
            return kind(**values)

        return cls(
            experiment=build(ExperimentInfo, "experiment"),
            data=build(DataConfig, "data"),
            model=build(ModelConfig, "model"),
            evaluation=build(EvaluationConfig, "evaluation"),
            report=build(ReportConfig, "report"),
        )


@dataclasses.dataclass
class Plan:
    """One run a config asks for: its name, and either the effective config or the errors."""

    source: str
    key: str
    point: dict
    effective: dict | None
    errors: list[ConfigError]
    warnings: list[str]
    group: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def name(self) -> str | None:
        return self.effective["experiment"]["name"] if self.effective else None

    @property
    def arch(self) -> str | None:
        return naming.arch_code(self.effective["model"]) if self.effective else None

    @property
    def identity(self) -> str | None:
        return run_identity(self.effective) if self.effective else None

    def experiment(self) -> Experiment:
        if not self.ok:
            raise ConfigErrors(self.errors)
        return Experiment.from_effective(self.effective)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "source": self.source,
            "key": self.key,
            "point": self.point,
            "errors": [e.to_dict() for e in self.errors],
            "warnings": self.warnings,
            "effective": self.effective,
            "name": self.name,
            "arch": self.arch,
            "identity": self.identity,
            "group": self.group,
        }


@functools.cache
def _schema_text() -> str:
    return resources.files("ssvae").joinpath("schemas/experiment.schema.yaml").read_text()


def schema() -> dict:
    """The experiment JSON Schema (also at workflow/schemas/experiment.schema.yaml)."""
    return yaml.safe_load(_schema_text())


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


@functools.cache
def _defaults_json() -> str:
    props = schema()["properties"]
    return json.dumps({
        section: {key: spec.get("default") for key, spec in props[section]["properties"].items()}
        for section in SECTIONS
    })


def defaults() -> dict:
    """Every section with every key at its schema default."""
    return json.loads(_defaults_json())


def run_identity(effective: dict) -> str:
    """Content hash of the effective `data` and `model` sections: what decides whether training is reused."""
    payload = json.dumps({"data": effective["data"], "model": effective["model"]}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _dotted(path) -> str:
    return ".".join(str(p) for p in path)


def _allowed_text(spec: dict) -> str | None:
    if "enum" in spec:
        return ", ".join(json.dumps(v) for v in spec["enum"])
    types = spec.get("type")
    bounds = []
    if "minimum" in spec:
        bounds.append(f">= {spec['minimum']}")
    if "exclusiveMinimum" in spec:
        bounds.append(f"> {spec['exclusiveMinimum']}")
    if "maximum" in spec:
        bounds.append(f"<= {spec['maximum']}")
    if "exclusiveMaximum" in spec:
        bounds.append(f"< {spec['exclusiveMaximum']}")
    if types is None and not bounds:
        return None
    kind = " or ".join(types) if isinstance(types, list) else (types or "")
    return " ".join(x for x in [kind, " and ".join(bounds)] if x) or None


def _schema_errors(raw: dict, file: str) -> list[ConfigError]:
    validator = _validator()
    errors = []
    for err in sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path))):
        where = list(err.absolute_path)
        if err.validator == "additionalProperties":
            known = sorted(err.schema.get("properties", {}))
            for extra in sorted(set(err.instance) - set(known)):
                if err.schema.get("additionalProperties") not in (False, None):
                    continue
                close = difflib.get_close_matches(str(extra), known, n=1, cutoff=0.5)
                errors.append(ConfigError(
                    file, _dotted(where + [extra]), err.instance[extra], "unknown key",
                    allowed=", ".join(known) if len(known) <= 12 else None,
                    suggestion=_dotted(where + [close[0]]) if close else None,
                ))
            continue
        spec = err.schema if isinstance(err.schema, dict) else {}
        message = {
            "enum": "not an allowed value",
            "type": "wrong type",
            "minimum": "out of range",
            "maximum": "out of range",
            "exclusiveMinimum": "out of range",
            "exclusiveMaximum": "out of range",
            "minItems": "too few items",
            "maxItems": "too many items",
        }.get(err.validator, err.message)
        errors.append(ConfigError(file, _dotted(where), err.instance, message, allowed=_allowed_text(spec)))
    return errors


def _normalise_legacy(raw: dict, file: str, warnings: list[str]) -> tuple[dict, list[ConfigError]]:
    """Map the earlier system's spellings onto this schema."""
    raw = copy.deepcopy(raw)
    errors = []
    data = raw.get("data")
    if isinstance(data, dict) and "dataset_variant" in data:
        variant = str(data.pop("dataset_variant")).lower()
        if variant not in LEGACY_DATASET_VARIANTS:
            errors.append(ConfigError(file, "data.dataset_variant", variant, "unknown dataset variant",
                                      allowed=", ".join(LEGACY_DATASET_VARIANTS)))
        else:
            mapped = LEGACY_DATASET_VARIANTS[variant]
            if "dataset" in data and data["dataset"] != mapped:
                warnings.append(f"{file}: data.dataset_variant={variant!r} overrides data.dataset={data['dataset']!r}")
            data["dataset"] = mapped
            warnings.append(f"{file}: data.dataset_variant is the earlier system's key; read as data.dataset={mapped!r}")
    model = raw.get("model")
    if isinstance(model, dict) and "val_split" in model:
        value = model.pop("val_split")
        raw.setdefault("data", {})
        if isinstance(raw["data"], dict):
            raw["data"].setdefault("val_split", value)
        warnings.append(f"{file}: model.val_split is the earlier system's key; read as data.val_split")
    return raw, errors


def _fill(raw: dict) -> dict:
    effective = defaults()
    for section in SECTIONS:
        effective[section].update(copy.deepcopy(raw.get(section) or {}))
    return effective


def _resolve(effective: dict, source: Path) -> None:
    """Fill the defaults that depend on other keys."""
    model = effective["model"]
    data = effective["data"]
    if effective["experiment"]["name"] is None:
        effective["experiment"]["name"] = source.stem
    if model["component_embedding_dim"] is None:
        model["component_embedding_dim"] = model["latent_dim"]
    _resolve_learnable_pi(model)
    if model["tau_init_counts"] is None:
        model["tau_init_counts"] = DEFAULT_TAU_INIT_COUNTS if model["use_tau_classifier"] else 0.0
    if model["use_component_aware_decoder"] and model["decoder_conditioning"] == "none":
        model["decoder_conditioning"] = "concat"
    model["use_component_aware_decoder"] = False
    if model["input_hw"] is None:
        model["input_hw"] = list(DATASETS[data["dataset"]]["hw"])
    if model["labeled_batch_size"] is None:
        model["labeled_batch_size"] = DEFAULT_LABELED_BATCH_SIZE if data["num_labeled"] > 0 else 0
    if data["augment_shift"] is None:
        data["augment_shift"] = default_augment_shift(DATASETS[data["dataset"]]["hw"])
    if data["path"] is not None:
        data["path"] = str(data["path"])


def _resolve_learnable_pi(model: dict) -> None:
    """`learnable_pi: null` (the default) resolves to true when a Dirichlet α is set (its MAP estimate of π is
    what α asks for), else to false; an explicit true or false is kept (false beside α is rejected)."""
    if model["learnable_pi"] is None:
        model["learnable_pi"] = model["dirichlet_alpha"] is not None and model["prior_type"] in CONDITIONABLE_PRIORS


def _pi_rules(m: dict, err) -> None:
    """A learned π must be able to act: it enters the loss only through KL(q(c|x) ‖ π) (and the Dirichlet
    penalty on itself), so a Dirichlet α with an explicit `learnable_pi: false`, or a learned π whose KL_c
    term is off, would change nothing the model computes."""
    dirichlet = m["dirichlet_alpha"] is not None and m["prior_type"] in CONDITIONABLE_PRIORS
    if dirichlet and not m["learnable_pi"]:  # null resolves to true beside alpha: this false was written
        err("model.learnable_pi", False,
            "a Dirichlet alpha is a prior on the learned mixture weights pi (its MAP estimate); with pi fixed "
            "the penalty is a constant", allowed="true or null (learned), or set model.dirichlet_alpha: null")
    if m["learnable_pi"] and m["prior_type"] in CONDITIONABLE_PRIORS:
        key, value = ("model.dirichlet_alpha", m["dirichlet_alpha"]) if dirichlet else ("model.learnable_pi", True)
        if m["c_regularizer"] == "logit_mog":
            err(key, value, "pi enters the loss only through KL(q(c|x) || pi), which c_regularizer 'logit_mog' "
                "leaves out, so a learned pi would change nothing", allowed="c_regularizer categorical or both")
        elif m["kl_c_weight"] == 0:
            err(key, value, "pi enters the loss only through KL(q(c|x) || pi), which kl_c_weight 0 switches off, "
                "so a learned pi would change nothing", allowed="kl_c_weight > 0")


def _gumbel_rule(m: dict, err) -> None:
    """With the shared latent layout the Gumbel-softmax sample y reaches the loss only through the decoder's
    embedding Σ_k y_k e_k; without decoder conditioning it would be computed and dropped."""
    if (m["use_gumbel_softmax"] and m["prior_type"] in CONDITIONABLE_PRIORS and m["latent_layout"] == "shared"
            and m["decoder_conditioning"] == "none"):
        err("model.use_gumbel_softmax", True,
            "Gumbel-softmax routing with the shared latent layout acts only through decoder conditioning, and "
            "decoder_conditioning is none", allowed="false, or set decoder_conditioning (concat, film, cin) or "
            "latent_layout: decentralized")


def _symmetric_components_warning(m: dict, file: str, warnings: list[str]) -> None:
    """Warn when nothing in the loss can tell one mixture component from another (they stay interchangeable)."""
    if m["prior_type"] != "mixture" or m["latent_layout"] != "shared" or m["decoder_conditioning"] != "none":
        return
    if m["use_tau_classifier"] and m["tau_init_counts"] > 0:
        return
    why = ("every component has the same p(z|c) = N(0, I), the latent layout is shared and the decoder is not "
           "conditioned on c")
    if m["use_tau_classifier"]:
        effect = ("and the tau-classifier starts uniform (tau_init_counts 0), so no term of the loss can tell one "
                  "component from another: usage stays uniform and the tau-classifier stays near chance")
    else:
        effect = ("so no term of the loss can tell one component from another: the components stay "
                  "interchangeable (uniform usage, meaningless clustering metrics); the classifier head on z "
                  "still learns")
    warnings.append(f"{file}: model: the mixture components cannot specialise: {why}, {effect}. Set "
                    "decoder_conditioning (concat, film, cin), latent_layout: decentralized, a tau-classifier "
                    "with tau_init_counts > 0, or prior_type geometric_mog or vamp")


def _semantic_errors(eff: dict, file: str, warnings: list[str]) -> list[ConfigError]:
    """The rules a schema cannot say (SPEC section 3)."""
    errors: list[ConfigError] = []
    m, d = eff["model"], eff["data"]

    def err(key, value, message, allowed=None):
        errors.append(ConfigError(file, key, value, message, allowed=allowed))

    prior = m["prior_type"]
    k = m["num_components"]
    mixture_list = ", ".join(MIXTURE_PRIORS)
    if m["use_tau_classifier"]:
        if prior not in MIXTURE_PRIORS:
            err("model.use_tau_classifier", True, f"the tau-classifier needs a mixture-based prior, not {prior!r}",
                allowed=f"prior_type in {mixture_list}")
        elif k < m["num_classes"]:
            err("model.num_components", k, "the tau-classifier needs num_components >= num_classes",
                allowed=f">= {m['num_classes']}")
    if m["tau_init_counts"] > 0 and not m["use_tau_classifier"]:
        err("model.tau_init_counts", m["tau_init_counts"], "only the tau-classifier has counts to initialise",
            allowed="0 or null, or set model.use_tau_classifier: true")
    if m["decoder_conditioning"] != "none" and prior not in CONDITIONABLE_PRIORS:
        err("model.decoder_conditioning", m["decoder_conditioning"],
            f"decoder conditioning needs a mixture or geometric_mog prior, not {prior!r}", allowed="none")
    if m["latent_layout"] == "decentralized":
        if prior not in CONDITIONABLE_PRIORS:
            err("model.latent_layout", "decentralized",
                f"the decentralized layout needs a mixture or geometric_mog prior, not {prior!r}", allowed="shared")
        elif k < 2:
            err("model.num_components", k, "the decentralized layout needs at least 2 components", allowed=">= 2")
    if m["use_gumbel_softmax"] and prior not in CONDITIONABLE_PRIORS:
        err("model.use_gumbel_softmax", True,
            f"Gumbel-softmax routing needs a mixture or geometric_mog prior, not {prior!r}", allowed="false")
    _pi_rules(m, err)
    _gumbel_rule(m, err)
    _symmetric_components_warning(m, file, warnings)
    if m["learnable_pi"] and prior not in CONDITIONABLE_PRIORS:
        err("model.learnable_pi", True, f"a learnable pi needs a mixture or geometric_mog prior, not {prior!r}",
            allowed="false")
    if prior == "geometric_mog" and m["geometric_arrangement"] == "grid" and math.isqrt(k) ** 2 != k:
        err("model.num_components", k, "the grid arrangement needs a perfect-square number of components",
            allowed="4, 9, 16, 25, ...")
    if prior == "geometric_mog" and m["latent_dim"] < 2:
        err("model.latent_dim", m["latent_dim"], "geometric_mog places centres in 2 dimensions", allowed=">= 2")
    if not m["sigma_min"] > 0:
        err("model.sigma_min", m["sigma_min"], "must be positive", allowed="> 0")
    if not m["sigma_max"] > m["sigma_min"]:
        err("model.sigma_max", m["sigma_max"], "must exceed sigma_min", allowed=f"> {m['sigma_min']}")
    if m["use_heteroscedastic_decoder"] and m["reconstruction_loss"] != "mse":
        err("model.reconstruction_loss", m["reconstruction_loss"],
            "the heteroscedastic decoder has a Gaussian likelihood; it does not pair with bce", allowed="mse")
    if m["dirichlet_alpha"] is not None and not m["dirichlet_alpha"] > 0:
        err("model.dirichlet_alpha", m["dirichlet_alpha"], "must be null or positive", allowed="null or > 0")
    if m["dirichlet_alpha"] is not None and prior not in CONDITIONABLE_PRIORS:
        warnings.append(f"{file}: model.dirichlet_alpha has no effect with prior_type {prior!r}")
    if not m["gumbel_temperature_min"] > 0:
        err("model.gumbel_temperature_min", m["gumbel_temperature_min"], "must be positive", allowed="> 0")
    if not m["gumbel_temperature"] >= m["gumbel_temperature_min"]:
        err("model.gumbel_temperature", m["gumbel_temperature"], "must be >= gumbel_temperature_min",
            allowed=f">= {m['gumbel_temperature_min']}")
    for key, off in UNSUPPORTED_UNLESS_OFF.items():
        if m[key] != off:
            err(f"model.{key}", m[key], "not supported (accepted only at its off value for the earlier system's configs)",
                allowed=json.dumps(off))
    hw = tuple(m["input_hw"])
    expected_hw = DATASETS[d["dataset"]]["hw"]
    if hw != expected_hw:
        err("model.input_hw", list(hw), f"does not match the {d['dataset']} images", allowed=str(list(expected_hw)))
    if "conv" in (m["encoder_type"], m["decoder_type"]) and (hw[0] % 4 or hw[1] % 4):
        err("model.encoder_type", m["encoder_type"], "conv layers need image sides divisible by 4", allowed="dense")
    classes = DATASETS[d["dataset"]]["classes"]
    if m["num_classes"] != classes:
        err("model.num_classes", m["num_classes"], f"{d['dataset']} has {classes} classes", allowed=str(classes))
    if d["dataset"] in ("mnist", "fashion_mnist"):
        if d["path"] is None:
            err("data.path", None, f"{d['dataset']} is read from files; set data.path to a folder of IDX .gz files "
                "or an .npz file (the embedded datasets are digits and mnist5k)")
        elif not Path(d["path"]).expanduser().exists():
            err("data.path", d["path"], "no such file or folder")
    else:
        info = DATASETS[d["dataset"]]
        pool = info["size"] - round(info["size"] * d["test_split"])
        if d["num_samples"] is not None and d["num_samples"] > pool:
            err("data.num_samples", d["num_samples"],
                f"{d['dataset']} has {pool} training images after the test split; samples are never drawn twice",
                allowed=f"<= {pool} or null")
        n = d["num_samples"] or pool
        n_train = n - max(1, round(n * d["val_split"]))
        if d["num_labeled"] > n_train:
            err("data.num_labeled", d["num_labeled"], f"only {n_train} training images remain after the validation split",
                allowed=f"<= {n_train}")
    if 0 < d["num_labeled"] < m["num_classes"]:
        warnings.append(f"{file}: data.num_labeled={d['num_labeled']} is fewer than num_classes; some classes have no label")
    if d["num_labeled"] == 0 and m["monitor_metric"] in ("classification_loss", "accuracy"):
        err("model.monitor_metric", m["monitor_metric"], "needs labeled data (data.num_labeled is 0)",
            allowed="auto, loss")
    if m["labeled_batch_size"] > 0 and d["num_labeled"] == 0:
        err("model.labeled_batch_size", m["labeled_batch_size"], "there is no labeled pool to draw from "
            "(data.num_labeled is 0)", allowed="0")
    if m["monitor_metric"] in ("classification_loss", "accuracy"):
        warnings.append(f"{file}: model.monitor_metric={m['monitor_metric']!r} early-stops on validation labels, "
                        "which are labels beyond data.num_labeled")
    if d["num_labeled"] == 0 or m["label_weight"] == 0:
        warnings.append(f"{file}: no supervision (num_labeled={d['num_labeled']}, label_weight={m['label_weight']}); "
                        "classification accuracy will be at chance level")
    try:
        naming.sanitize_name(eff["experiment"]["name"])
    except naming.NamingError as exc:
        err("experiment.name", eff["experiment"]["name"], str(exc))
    return errors


def read_yaml(path: Path) -> tuple[Any, list[ConfigError]]:
    file = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        return None, [ConfigError(file, "", None, f"cannot read the file: {exc.strerror or exc}")]
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [ConfigError(file, "", None, f"not valid YAML{where}: {problem}")]
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return None, [ConfigError(file, "", type(raw).__name__, "a config must be a mapping of sections",
                                  allowed=", ".join(SECTIONS + ("sweep",)))]
    return raw, []


def _set_dotted(raw: dict, key: str, value) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise KeyError(key)
    node[parts[-1]] = value


SEED_KEY = "model.random_seed"

KEY_ABBREVIATIONS = {
    "learning_rate": "lr", "num_components": "k", "latent_dim": "z", "random_seed": "s", "seed": "s",
    "batch_size": "bs", "kl_weight": "kl", "kl_c_weight": "klc", "label_weight": "lw", "num_labeled": "nl",
    "num_samples": "n", "dirichlet_alpha": "alpha", "hidden_dims": "h", "max_epochs": "ep", "patience": "pat",
    "recon_weight": "rw", "weight_decay": "wd", "dropout_rate": "drop", "component_diversity_weight": "div",
    "use_tau_classifier": "tau", "use_gumbel_softmax": "gumbel", "use_heteroscedastic_decoder": "het",
    "learnable_pi": "learnpi", "geometric_radius": "r",
}


def _format_value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}".replace(".", "p").replace("+", "")
    if isinstance(value, (list, tuple)):
        return "x".join(_format_value(v) for v in value)
    return str(value)


def point_label(point: dict) -> str:
    """A short, readable, stable label for a sweep point, e.g. `lr0p001-mixture-s1`.

    Word values (prior types, arrangements, ...) stand for themselves; numbers and switches get a short key.
    """
    parts = []
    for key, value in point.items():
        if isinstance(value, str):
            parts.append(value)
            continue
        leaf = key.split(".")[-1]
        parts.append(f"{KEY_ABBREVIATIONS.get(leaf, leaf)}{_format_value(value)}")
    return "-".join(parts)


def sweep_points(raw: dict) -> list[dict]:
    """Every grid combination (in the order written) times every seed; [{}] without a sweep."""
    sweep = raw.get("sweep")
    if not isinstance(sweep, dict):
        return [{}]
    grid = sweep.get("grid") or {}
    seeds = sweep.get("seeds")
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        return [{}]
    axes = list(grid.items())
    if isinstance(seeds, list) and seeds:
        axes.append((SEED_KEY, seeds))
    if not axes:
        return [{}]
    keys = [k for k, _ in axes]
    return [dict(zip(keys, combo)) for combo in itertools.product(*[v for _, v in axes])]


def plan_key(source: Path, point: dict) -> str:
    """The workflow's per-run planning key: the config file's stem plus the sweep point label."""
    stem = naming.sanitize_name(source.stem) if source.stem.strip("_-. ") else "config"
    if not point:
        return stem
    return f"{stem}.{naming.sanitize_name(point_label(point))}"


def plan_keys(path: Path) -> list[str]:
    """Cheap planning used at Snakefile parse time: read the YAML, expand the sweep, validate nothing."""
    raw, errors = read_yaml(Path(path))
    if errors:
        return [plan_key(Path(path), {})]
    return [plan_key(Path(path), point) for point in sweep_points(raw)]


def _plan_one(source: Path, raw: dict, point: dict, base_warnings: list[str]) -> Plan:
    file = str(source)
    warnings = list(base_warnings)
    raw = copy.deepcopy(raw)
    raw.pop("sweep", None)
    errors: list[ConfigError] = []
    for key, value in point.items():
        try:
            _set_dotted(raw, key, value)
        except (KeyError, AttributeError):
            errors.append(ConfigError(file, f"sweep.grid.{key}", value, "cannot set this key"))
    key = plan_key(source, point)
    raw, legacy_errors = _normalise_legacy(raw, file, warnings)
    errors += legacy_errors
    errors += _schema_errors(raw, file)
    if errors:
        return Plan(file, key, point, None, errors, warnings)
    effective = _fill(raw)
    _resolve(effective, source)
    base = effective["experiment"]["name"]
    group_point = {k: v for k, v in point.items() if k != SEED_KEY}
    group = f"{base}-{point_label(group_point)}" if group_point else base
    if point:
        effective["experiment"]["name"] = f"{base}-{point_label(point)}"
    errors = _semantic_errors(effective, file, warnings)
    if errors:
        return Plan(file, key, point, None, errors, warnings)
    effective["experiment"]["name"] = naming.sanitize_name(effective["experiment"]["name"])
    return Plan(file, key, point, effective, [], warnings, group=naming.sanitize_name(group))


def load_plans(path: str | Path) -> list[Plan]:
    """Read one config file and return a Plan per run it asks for (one, or one per sweep point)."""
    source = Path(path)
    raw, errors = read_yaml(source)
    if errors:
        return [Plan(str(source), plan_key(source, {}), {}, None, errors, [])]
    warnings: list[str] = []
    sweep = raw.get("sweep")
    if sweep is not None:
        sweep_errors = _schema_errors({"sweep": sweep}, str(source))
        if sweep_errors:
            return [Plan(str(source), plan_key(source, {}), {}, None, sweep_errors, [])]
    plans = [_plan_one(source, raw, point, warnings) for point in sweep_points(raw)]
    names = [p.name for p in plans if p.ok]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        for plan in plans:
            if plan.ok and plan.name in dupes:
                plan.errors.append(ConfigError(str(source), "sweep", plan.name,
                                               "two sweep points give the same run name (shorten experiment.name)"))
                plan.effective = None
    return plans


def load_plan(path: str | Path, key: str) -> Plan:
    """The plan with this key from a config file."""
    for plan in load_plans(path):
        if plan.key == key:
            return plan
    raise KeyError(f"{path} has no run with key {key!r}")


def load_experiment(path: str | Path) -> Experiment:
    """A single-run config as a validated Experiment; raises ConfigErrors listing every problem."""
    plans = load_plans(path)
    if len(plans) != 1:
        raise ConfigErrors([ConfigError(str(path), "sweep", None, f"declares {len(plans)} runs; use load_plans")])
    return plans[0].experiment()
