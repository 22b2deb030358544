"""The semantic rules a schema cannot say (docs/configuration.md, "Semantic rules"): one named function per rule,
run in order.

Each rule reads the effective config (every default resolved) and reports through a `Findings`; `RULES`
lists them in the order their messages appear.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Callable, Sequence

from ssvae import naming
from ssvae.config.legacy import UNSUPPORTED_UNLESS_OFF
from ssvae.config.types import CONDITIONABLE_PRIORS, DATASETS, MIXTURE_PRIORS, ConfigError, stochastic_classifier


@dataclasses.dataclass
class Findings:
    """What the rules found in one config: errors (the run cannot go ahead) and warnings (it can)."""

    file: str
    errors: list[ConfigError] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def error(self, key: str, value, message: str, allowed: str | None = None) -> None:
        self.errors.append(ConfigError(self.file, key, value, message, allowed=allowed))

    def warn(self, text: str) -> None:
        self.warnings.append(f"{self.file}: {text}")


Rule = Callable[[dict, Findings], None]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register a semantic rule (in definition order)."""
    RULES.append(fn)
    return fn


@rule
def tau_classifier_needs_mixture_prior(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["use_tau_classifier"] and m["prior_type"] not in MIXTURE_PRIORS:
        out.error("model.use_tau_classifier", True,
                  f"the tau-classifier needs a mixture-based prior, not {m['prior_type']!r}",
                  allowed=f"prior_type in {', '.join(MIXTURE_PRIORS)}")


@rule
def tau_classifier_needs_a_component_per_class(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["use_tau_classifier"] and m["prior_type"] in MIXTURE_PRIORS and m["num_components"] < m["num_classes"]:
        out.error("model.num_components", m["num_components"], "the tau-classifier needs num_components >= num_classes",
                  allowed=f">= {m['num_classes']}")


@rule
def tau_init_counts_need_tau_classifier(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["tau_init_counts"] > 0 and not m["use_tau_classifier"]:
        out.error("model.tau_init_counts", m["tau_init_counts"], "only the tau-classifier has counts to initialise",
                  allowed="0 or null, or set model.use_tau_classifier: true")


@rule
def decoder_conditioning_needs_component_embeddings(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["decoder_conditioning"] != "none" and m["prior_type"] not in CONDITIONABLE_PRIORS:
        out.error("model.decoder_conditioning", m["decoder_conditioning"],
                  f"decoder conditioning needs a mixture or geometric_mog prior, not {m['prior_type']!r}",
                  allowed="none")


@rule
def decentralized_layout_needs_components(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["latent_layout"] != "decentralized":
        return
    if m["prior_type"] not in CONDITIONABLE_PRIORS:
        out.error("model.latent_layout", "decentralized",
                  f"the decentralized layout needs a mixture or geometric_mog prior, not {m['prior_type']!r}",
                  allowed="shared")
    elif m["num_components"] < 2:
        out.error("model.num_components", m["num_components"], "the decentralized layout needs at least 2 components",
                  allowed=">= 2")


@rule
def gumbel_routing_needs_components(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["use_gumbel_softmax"] and m["prior_type"] not in CONDITIONABLE_PRIORS:
        out.error("model.use_gumbel_softmax", True,
                  f"Gumbel-softmax routing needs a mixture or geometric_mog prior, not {m['prior_type']!r}",
                  allowed="false")


@rule
def learnable_pi_needs_components(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["learnable_pi"] and m["prior_type"] not in CONDITIONABLE_PRIORS:
        out.error("model.learnable_pi", True,
                  f"a learnable pi needs a mixture or geometric_mog prior, not {m['prior_type']!r}", allowed="false")


@rule
def dirichlet_alpha_means_learned_pi(eff: dict, out: Findings) -> None:
    """A Dirichlet α is a prior on a learned π (its MAP estimate): with π fixed the penalty is a constant.
    `learnable_pi: null` resolves to true beside α, so a false here was written."""
    m = eff["model"]
    if m["dirichlet_alpha"] is not None and m["prior_type"] in CONDITIONABLE_PRIORS and not m["learnable_pi"]:
        out.error("model.learnable_pi", False,
                  "a Dirichlet alpha is a prior on the learned mixture weights pi (its MAP estimate); with pi fixed "
                  "the penalty is a constant", allowed="true or null (learned), or set model.dirichlet_alpha: null")


@rule
def learned_pi_enters_the_loss(eff: dict, out: Findings) -> None:
    """A learned π acts only through KL(q(c|x) ‖ π) (and the Dirichlet penalty on itself): with that term off it
    would change nothing the model computes."""
    m = eff["model"]
    if not (m["learnable_pi"] and m["prior_type"] in CONDITIONABLE_PRIORS):
        return
    dirichlet = m["dirichlet_alpha"] is not None
    key, value = ("model.dirichlet_alpha", m["dirichlet_alpha"]) if dirichlet else ("model.learnable_pi", True)
    if m["c_regularizer"] == "logit_mog":
        out.error(key, value, "pi enters the loss only through KL(q(c|x) || pi), which c_regularizer 'logit_mog' "
                  "leaves out, so a learned pi would change nothing", allowed="c_regularizer categorical or both")
    elif m["kl_c_weight"] == 0:
        out.error(key, value, "pi enters the loss only through KL(q(c|x) || pi), which kl_c_weight 0 switches "
                  "off, so a learned pi would change nothing", allowed="kl_c_weight > 0")


@rule
def shared_layout_gumbel_needs_conditioning(eff: dict, out: Findings) -> None:
    """With the shared latent layout the Gumbel-softmax sample y reaches the loss only through the decoder's
    embedding Σ_k y_k e_k; without decoder conditioning it would be computed and dropped."""
    m = eff["model"]
    if (m["use_gumbel_softmax"] and m["prior_type"] in CONDITIONABLE_PRIORS and m["latent_layout"] == "shared"
            and m["decoder_conditioning"] == "none"):
        out.error("model.use_gumbel_softmax", True,
                  "Gumbel-softmax routing with the shared latent layout acts only through decoder conditioning, "
                  "and decoder_conditioning is none",
                  allowed="false, or set decoder_conditioning (concat, film, cin) or latent_layout: decentralized")


@rule
def vamp_has_no_free_component_logits(eff: dict, out: Findings) -> None:
    """The logit-MoG penalty is a prior on free encoder logits; the VampPrior's q(c|x) comes from its
    pseudo-inputs, log r_k = log π_k + log q(z|u_k) − log Σ_j (·), log-density differences with no scale of
    their own (they reach −10⁸ for a latent far from every pseudo-input), so the penalty has nothing to act on."""
    m = eff["model"]
    if m["prior_type"] == "vamp" and m["c_regularizer"] in ("logit_mog", "both"):
        out.error("model.c_regularizer", m["c_regularizer"],
                  "the VampPrior has no component logits of its own: its q(c|x) is the pseudo-inputs' posterior "
                  "at z (log-density differences), which a Gaussian-mixture penalty on logits does not fit",
                  allowed="categorical")


def interchangeable_components(m: dict) -> bool:
    """Nothing in the loss can tell one mixture component from another: every p(z|c) = N(0, I), the layout is
    shared, the decoder is not conditioned on c, and no τ assignment names the components."""
    return (m["prior_type"] == "mixture" and m["latent_layout"] == "shared" and m["decoder_conditioning"] == "none"
            and not (m["use_tau_classifier"] and m["tau_init_counts"] > 0))


@rule
def interchangeable_components_warning(eff: dict, out: Findings) -> None:
    """Warn when nothing in the loss can tell one mixture component from another (they stay interchangeable)."""
    m = eff["model"]
    if not interchangeable_components(m):
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
    out.warn(f"model: the mixture components cannot specialise: {why}, {effect}. Set decoder_conditioning "
             "(concat, film, cin), latent_layout: decentralized, a tau-classifier with tau_init_counts > 0, or "
             "prior_type geometric_mog or vamp")


@rule
def augment_shift_within_the_image(eff: dict, out: Findings) -> None:
    shift = eff["data"]["augment_shift"]
    side = min(eff["model"]["input_hw"])
    if shift >= side:
        out.error("data.augment_shift", shift, f"a shift of the whole image side ({side} pixels) or more leaves "
                  "nothing of the image", allowed=f"0 to {side - 1}")


@rule
def consistency_needs_augmentation(eff: dict, out: Findings) -> None:
    """Consistency regularisation compares two answers of the classifier on one image; without shifts a
    τ-classifier on a mixture or geometric prior gives the same answer twice (r comes from the encoder's logits,
    not from the sampled z)."""
    m = eff["model"]
    if m["consistency_weight"] > 0 and not eff["data"]["augment_shift"] and not stochastic_classifier(
            m["use_tau_classifier"], m["prior_type"]):
        out.error("model.consistency_weight", m["consistency_weight"], "compares the classifier's answers on two "
                  "passes over each training image, and with data.augment_shift 0 (no shifts) a tau-classifier on "
                  f"a {m['prior_type']} prior answers the same on both (r(x) comes from the encoder's logits, not "
                  "from the sampled z): the term would always be 0",
                  allowed="0, or set data.augment_shift >= 1 (a head on z or the VampPrior's tau vary without shifts)")


@rule
def grid_needs_perfect_square(eff: dict, out: Findings) -> None:
    m = eff["model"]
    k = m["num_components"]
    if m["prior_type"] == "geometric_mog" and m["geometric_arrangement"] == "grid" and math.isqrt(k) ** 2 != k:
        out.error("model.num_components", k, "the grid arrangement needs a perfect-square number of components",
                  allowed="4, 9, 16, 25, ...")


@rule
def geometric_needs_two_latent_dims(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["prior_type"] == "geometric_mog" and m["latent_dim"] < 2:
        out.error("model.latent_dim", m["latent_dim"], "geometric_mog places centres in 2 dimensions", allowed=">= 2")


@rule
def sigma_min_positive(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if not m["sigma_min"] > 0:
        out.error("model.sigma_min", m["sigma_min"], "must be positive", allowed="> 0")


@rule
def sigma_max_exceeds_sigma_min(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if not m["sigma_max"] > m["sigma_min"]:
        out.error("model.sigma_max", m["sigma_max"], "must exceed sigma_min", allowed=f"> {m['sigma_min']}")


@rule
def heteroscedastic_needs_gaussian_likelihood(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["use_heteroscedastic_decoder"] and m["reconstruction_loss"] != "mse":
        out.error("model.reconstruction_loss", m["reconstruction_loss"],
                  "the heteroscedastic decoder has a Gaussian likelihood; it does not pair with bce", allowed="mse")


@rule
def dirichlet_alpha_positive(eff: dict, out: Findings) -> None:
    alpha = eff["model"]["dirichlet_alpha"]
    if alpha is not None and not alpha > 0:
        out.error("model.dirichlet_alpha", alpha, "must be null or positive", allowed="null or > 0")


@rule
def dirichlet_alpha_needs_pi(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["dirichlet_alpha"] is not None and m["prior_type"] not in CONDITIONABLE_PRIORS:
        out.warn(f"model.dirichlet_alpha has no effect with prior_type {m['prior_type']!r}")


@rule
def gumbel_temperature_min_positive(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if not m["gumbel_temperature_min"] > 0:
        out.error("model.gumbel_temperature_min", m["gumbel_temperature_min"], "must be positive", allowed="> 0")


@rule
def gumbel_temperature_at_least_min(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if not m["gumbel_temperature"] >= m["gumbel_temperature_min"]:
        out.error("model.gumbel_temperature", m["gumbel_temperature"], "must be >= gumbel_temperature_min",
                  allowed=f">= {m['gumbel_temperature_min']}")


@rule
def unimplemented_legacy_keys_off(eff: dict, out: Findings) -> None:
    m = eff["model"]
    for key, off in UNSUPPORTED_UNLESS_OFF.items():
        if m[key] != off:
            out.error(f"model.{key}", m[key],
                      "not supported (accepted only at its off value for the earlier system's configs)",
                      allowed=json.dumps(off))


@rule
def input_hw_matches_dataset(eff: dict, out: Findings) -> None:
    hw = tuple(eff["model"]["input_hw"])
    dataset = eff["data"]["dataset"]
    expected_hw: tuple = DATASETS[dataset]["hw"]  # type: ignore[assignment]
    if hw != expected_hw:
        out.error("model.input_hw", list(hw), f"does not match the {dataset} images", allowed=str(list(expected_hw)))


@rule
def conv_needs_sides_divisible_by_4(eff: dict, out: Findings) -> None:
    m = eff["model"]
    hw = tuple(m["input_hw"])
    if "conv" in (m["encoder_type"], m["decoder_type"]) and (hw[0] % 4 or hw[1] % 4):
        out.error("model.encoder_type", m["encoder_type"], "conv layers need image sides divisible by 4",
                  allowed="dense")


@rule
def num_classes_matches_dataset(eff: dict, out: Findings) -> None:
    m, d = eff["model"], eff["data"]
    classes = DATASETS[d["dataset"]]["classes"]
    if m["num_classes"] != classes:
        out.error("model.num_classes", m["num_classes"], f"{d['dataset']} has {classes} classes",
                  allowed=str(classes))


MAX_PARAMETERS = 100_000_000


def dense_parameter_count(m: dict) -> int:
    """About how many weights the dense networks hold: encoder and mirrored decoder over hidden_dims, the
    latent heads (one per component in the decentralized layout), the classifier head, the pseudo-inputs."""
    pixels = m["input_hw"][0] * m["input_hw"][1]
    chain = [pixels, *m["hidden_dims"]]
    trunk = sum(a * b for a, b in zip(chain, chain[1:]))
    copies = m["num_components"] if m["latent_layout"] == "decentralized" else 1
    last = chain[-1]
    heads = last * (2 * copies * m["latent_dim"] + m["num_components"])
    decoder_in = (m["latent_dim"] + (m["component_embedding_dim"] or 0)) * last
    classifier = last * last * 2 + last * m["num_classes"]
    pseudo = m["num_components"] * pixels if m["prior_type"] == "vamp" else 0
    return 2 * trunk + heads + decoder_in + classifier + pseudo


@rule
def networks_fit_in_memory(eff: dict, out: Findings) -> None:
    m = eff["model"]
    count = dense_parameter_count(m)
    if count > MAX_PARAMETERS:
        out.error("model.hidden_dims", m["hidden_dims"], f"the networks would hold about {count:,} weights "
                  "(from hidden_dims, latent_dim, num_components and the layout); training could not fit them",
                  allowed=f"settings that give at most {MAX_PARAMETERS:,} weights")


@rule
def few_labels_warning(eff: dict, out: Findings) -> None:
    d, m = eff["data"], eff["model"]
    if 0 < d["num_labeled"] < m["num_classes"]:
        out.warn(f"data.num_labeled={d['num_labeled']} is fewer than num_classes; some classes have no label")


@rule
def label_metrics_need_labels(eff: dict, out: Findings) -> None:
    d, m = eff["data"], eff["model"]
    if d["num_labeled"] == 0 and m["monitor_metric"] in ("classification_loss", "accuracy"):
        out.error("model.monitor_metric", m["monitor_metric"], "needs labeled data (data.num_labeled is 0)",
                  allowed="auto, loss")


@rule
def labeled_batches_need_labels(eff: dict, out: Findings) -> None:
    d, m = eff["data"], eff["model"]
    if m["labeled_batch_size"] > 0 and d["num_labeled"] == 0:
        out.error("model.labeled_batch_size", m["labeled_batch_size"], "there is no labeled pool to draw from "
                  "(data.num_labeled is 0)", allowed="0")


@rule
def label_monitor_warning(eff: dict, out: Findings) -> None:
    m = eff["model"]
    if m["monitor_metric"] in ("classification_loss", "accuracy"):
        out.warn(f"model.monitor_metric={m['monitor_metric']!r} early-stops on validation labels, "
                 "which are labels beyond data.num_labeled")


@rule
def no_supervision_warning(eff: dict, out: Findings) -> None:
    d, m = eff["data"], eff["model"]
    if d["num_labeled"] == 0 or m["label_weight"] == 0:
        out.warn(f"no supervision (num_labeled={d['num_labeled']}, label_weight={m['label_weight']}); "
                 "classification accuracy will be at chance level")


@rule
def name_survives_sanitising(eff: dict, out: Findings) -> None:
    name = eff["experiment"]["name"]
    try:
        naming.sanitize_name(name)
    except naming.NamingError as exc:
        out.error("experiment.name", name, str(exc))


def semantic_errors(eff: dict, file: str, warnings: list[str], rules: Sequence[Rule] = RULES) -> list[ConfigError]:
    """Run every rule on the effective config; append its warnings to `warnings`, return its errors."""
    findings = Findings(file)
    for check in rules:
        check(eff, findings)
    warnings.extend(findings.warnings)
    return findings.errors
