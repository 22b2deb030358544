"""Which config keys act on a given run: the report shows those first and folds the rest away, the comparison
leaves them out of its differing-keys columns, and `ssvae diff` marks them.

A rule reads the effective config (plain dicts, as in summary.json or config.yaml) and returns why a key does
not act (None when it does). Keys without a rule always act, so a new key is shown until someone says otherwise.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ssvae.config.legacy import UNSUPPORTED_UNLESS_OFF
from ssvae.config.types import CONDITIONABLE_PRIORS, MIXTURE_PRIORS

Rule = Callable[[Mapping[str, Any]], "str | None"]


def _model(config: Mapping) -> Mapping:
    return config.get("model") or {}


def _mixture(config):
    prior = _model(config).get("prior_type")
    return None if prior in MIXTURE_PRIORS else f"prior_type {prior} has no components"


def _embeddings(config):
    prior = _model(config).get("prior_type")
    return None if prior in CONDITIONABLE_PRIORS else f"prior_type {prior} has no π or component embeddings"


def _prior(name: str) -> Rule:
    def rule(config):
        prior = _model(config).get("prior_type")
        return None if prior == name else f"only for prior_type {name} (this run: {prior})"
    return rule


def _flag(key: str, what: str) -> Rule:
    def rule(config):
        return None if _model(config).get(key) else f"{key} is off ({what})"
    return rule


def _all(*rules: Rule) -> Rule:
    def rule(config):
        for r in rules:
            reason = r(config)
            if reason:
                return reason
        return None
    return rule


def _dirichlet(config):
    return None if _model(config).get("dirichlet_alpha") is not None else "dirichlet_alpha is null (no penalty)"


def _logit_mog(config):
    regularizer = _model(config).get("c_regularizer")
    return None if regularizer in ("logit_mog", "both") else f"c_regularizer is {regularizer}"


def _conditioned(config):
    model = _model(config)
    if model.get("decoder_conditioning", "none") != "none" or model.get("use_component_aware_decoder"):
        return None
    return "decoder_conditioning is none (the embeddings condition nothing)"


def _dense_somewhere(config):
    model = _model(config)
    uses = "dense" in (model.get("encoder_type"), model.get("decoder_type")) or not model.get("use_tau_classifier")
    return None if uses else "no dense encoder, decoder or classifier head"


def _head(config):
    return "the τ-classifier has no head" if _model(config).get("use_tau_classifier") else None


def _never(config):
    return "never implemented: accepted only at its off value"


def _data_path(config):
    dataset = (config.get("data") or {}).get("dataset")
    return None if dataset in ("mnist", "fashion_mnist") else f"dataset {dataset} is embedded (no files read)"


MODEL_RULES: dict[str, Rule] = {
    "num_components": _mixture,
    "kl_c_weight": _mixture,
    "kl_c_anneal_epochs": _mixture,
    "component_diversity_weight": _mixture,
    "c_regularizer": _mixture,
    "mixture_history_log_every": _mixture,
    "use_gumbel_softmax": _embeddings,
    "latent_layout": _embeddings,
    "c_logit_prior_weight": _all(_mixture, _logit_mog),
    "c_logit_prior_mean": _all(_mixture, _logit_mog),
    "c_logit_prior_sigma": _all(_mixture, _logit_mog),
    "learnable_pi": _embeddings,
    "dirichlet_alpha": _embeddings,
    "dirichlet_weight": _all(_embeddings, _dirichlet),
    "component_embedding_dim": _all(_embeddings, _conditioned),
    "decoder_conditioning": _embeddings,
    "use_component_aware_decoder": _embeddings,
    "tau_smoothing_alpha": _flag("use_tau_classifier", "MLP head"),
    "tau_init_counts": _flag("use_tau_classifier", "MLP head"),
    "dropout_rate": _head,
    "classifier_type": _head,
    "sigma_min": _flag("use_heteroscedastic_decoder", "fixed-variance decoder"),
    "sigma_max": _flag("use_heteroscedastic_decoder", "fixed-variance decoder"),
    "gumbel_temperature": _all(_embeddings, _flag("use_gumbel_softmax", "no Gumbel routing")),
    "gumbel_temperature_min": _all(_embeddings, _flag("use_gumbel_softmax", "no Gumbel routing")),
    "gumbel_temperature_anneal_epochs": _all(_embeddings, _flag("use_gumbel_softmax", "no Gumbel routing")),
    "use_straight_through_gumbel": _all(_embeddings, _flag("use_gumbel_softmax", "no Gumbel routing")),
    "vamp_num_samples_kl": _prior("vamp"),
    "vamp_pseudo_lr_scale": _prior("vamp"),
    "vamp_pseudo_init_method": _prior("vamp"),
    "geometric_arrangement": _prior("geometric_mog"),
    "geometric_radius": _prior("geometric_mog"),
    "hidden_dims": _dense_somewhere,
    **{key: _never for key in UNSUPPORTED_UNLESS_OFF},
}
RULES: dict[tuple[str, str], Rule] = {("model", k): rule for k, rule in MODEL_RULES.items()}
RULES[("data", "path")] = _data_path


def not_applicable(section: str, key: str, config: Mapping) -> str | None:
    """Why `section.key` does not act on the run whose effective config is `config` (None: it acts)."""
    rule = RULES.get((section, key))
    return rule(config) if rule else None


def split_section(section: str, config: Mapping) -> tuple[dict, dict]:
    """(keys that act, {key: (value, reason)} for keys that do not) of one section of `config`."""
    acting, idle = {}, {}
    for key, value in (config.get(section) or {}).items():
        reason = not_applicable(section, key, config)
        if reason:
            idle[key] = (value, reason)
        else:
            acting[key] = value
    return acting, idle
