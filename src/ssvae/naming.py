"""Run names: sanitising, the architecture code, run ids and the naming legend."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

from ssvae import document

MAX_NAME_LENGTH = 64

# Regexes for the three parts of a run id; the workflow uses them as wildcard_constraints.
NAME_PATTERN = r"[a-z0-9](?:[a-z0-9-]|_(?!_))*"
ARCH_PATTERN = (r"(?:std|mix\d+(?:-dir)?(?:-dec)?(?:-gbl)?|vamp\d+-(?:km|rand)"
                r"|geo\d+-(?:circle|grid)(?:-dec)?(?:-gbl)?)"
                r"_(?:tau|head)_(?:plain|het|(?:cin|film|ca)(?:-het)?)")
TS_PATTERN = r"\d{8}_\d{6}"
TS_FORMAT = "%Y%m%d_%H%M%S"

_RUN_ID_RE = re.compile(rf"^(?P<name>{NAME_PATTERN})__(?P<arch>{ARCH_PATTERN})__(?P<ts>{TS_PATTERN})$")
_ARCH_RE = re.compile(rf"^{ARCH_PATTERN}$")


class NamingError(ValueError):
    """A name or run id that cannot be used."""


def _shown(raw) -> str:
    text = repr(raw) if len(str(raw)) <= 60 else f"{str(raw)[:40]!r}... ({len(str(raw)):,} characters)"
    return text


def sanitize_name(raw: str, max_length: int | None = MAX_NAME_LENGTH) -> str:
    """Lowercase; runs of characters outside [a-z0-9-] become one `_`; strip `_`/`-` at both ends; at most 64 chars.

    Raises NamingError when nothing is left.
    """
    name = re.sub(r"[^a-z0-9-]+", "_", str(raw).lower())
    name = re.sub(r"_+", "_", name).strip("_-")
    if max_length is not None:
        name = name[:max_length].strip("_-")
    if not name:
        raise NamingError(f"name {_shown(raw)} is empty after sanitising (allowed: letters, digits, '-', '_')")
    return name


def is_cut(raw: str) -> bool:
    """True when sanitising `raw` drops characters beyond the 64 allowed (two such names may then collide)."""
    try:
        return sanitize_name(raw) != sanitize_name(raw, max_length=None)
    except NamingError:
        return False


# The model keys the architecture code is made of (prior_code, classifier_code, decoder_code read these only).
ARCH_KEYS = ("prior_type", "num_components", "latent_layout", "use_gumbel_softmax", "dirichlet_alpha",
             "vamp_pseudo_init_method", "geometric_arrangement", "use_tau_classifier", "decoder_conditioning",
             "use_component_aware_decoder", "use_heteroscedastic_decoder")


def _get(model: Any, key: str):
    return model[key] if isinstance(model, Mapping) else getattr(model, key)


def prior_code(model: Any) -> str:
    """`std`, `mix{K}[-dir][-dec][-gbl]`, `vamp{K}-km|-rand` or `geo{K}-circle|-grid[-dec][-gbl]`."""
    prior = _get(model, "prior_type")
    k = _get(model, "num_components")
    decentralized = _get(model, "latent_layout") == "decentralized"
    gumbel = bool(_get(model, "use_gumbel_softmax"))
    if prior == "standard":
        return "std"
    if prior == "mixture":
        alpha = _get(model, "dirichlet_alpha")
        parts = [f"mix{k}"]
        if alpha is not None and alpha > 0:
            parts.append("dir")
        if decentralized:
            parts.append("dec")
        if gumbel:
            parts.append("gbl")
        return "-".join(parts)
    if prior == "vamp":
        init = _get(model, "vamp_pseudo_init_method")
        return f"vamp{k}-" + {"kmeans": "km", "random": "rand"}[init]
    if prior == "geometric_mog":
        parts = [f"geo{k}", _get(model, "geometric_arrangement")]
        if decentralized:
            parts.append("dec")
        if gumbel:
            parts.append("gbl")
        return "-".join(parts)
    raise NamingError(f"unknown prior_type {prior!r}")


def classifier_code(model: Any) -> str:
    """`tau` for the τ-classifier, `head` for the MLP head."""
    return "tau" if _get(model, "use_tau_classifier") else "head"


def decoder_code(model: Any) -> str:
    """`cin` | `film` | `ca`, then `het` if heteroscedastic, joined by `-`; `plain` when neither."""
    conditioning = _get(model, "decoder_conditioning")
    parts = []
    if conditioning == "cin":
        parts.append("cin")
    elif conditioning == "film":
        parts.append("film")
    elif conditioning == "concat" or _get(model, "use_component_aware_decoder"):
        parts.append("ca")
    if _get(model, "use_heteroscedastic_decoder"):
        parts.append("het")
    return "-".join(parts) or "plain"


def arch_code(model: Any) -> str:
    """`{prior}_{classifier}_{decoder}` for a model config (mapping or dataclass)."""
    return f"{prior_code(model)}_{classifier_code(model)}_{decoder_code(model)}"


@dataclasses.dataclass(frozen=True)
class RunId:
    """`{name}__{arch}__{ts}`: the run folder's name."""

    name: str
    arch: str
    ts: str

    def __str__(self) -> str:
        return f"{self.name}__{self.arch}__{self.ts}"

    @classmethod
    def parse(cls, run_id: str) -> "RunId":
        match = _RUN_ID_RE.match(run_id)
        if not match:
            raise NamingError(
                f"{_shown(run_id)} is not a run id of the form <name>__<arch>__<YYYYmmdd_HHMMSS>"
            )
        return cls(**match.groupdict())


def is_arch_code(code: str) -> bool:
    return bool(_ARCH_RE.match(code))


LEGEND_PARTS = {
    "prior": [
        ("std", "standard normal prior N(0, I)"),
        ("mix{K}", "mixture prior with K components (p(z|c) = N(0, I), component embeddings condition the decoder)"),
        ("-dir", "mixture whose weights pi are learned as the MAP estimate under Dirichlet(alpha) "
                 "(dirichlet_alpha > 0)"),
        ("-dec", "decentralized latent layout: one q(z_k|x) per component"),
        ("-gbl", "Gumbel-softmax routing: the decoder sees one sampled component (its embedding, or its z_k when "
                 "decentralized)"),
        ("vamp{K}-km / vamp{K}-rand", "VampPrior with K pseudo-inputs initialised by k-means centres / random "
                                      "training images; its components are the pseudo-inputs"),
        ("geo{K}-circle / geo{K}-grid", "geometric mixture of Gaussians with K fixed centres on a circle / "
                                        "sqrt(K) x sqrt(K) grid in the first two latent dimensions"),
    ],
    "classifier": [
        ("tau", "tau-classifier: p(y|x) = r . tau from responsibility-weighted label counts"),
        ("head", "MLP classification head on z"),
    ],
    "decoder": [
        ("plain", "unconditioned decoder, Bernoulli/Gaussian likelihood with fixed variance"),
        ("ca", "decoder conditioned by concatenating the component embedding"),
        ("film", "FiLM conditioning: gamma, beta from the component embedding"),
        ("cin", "conditional instance norm: normalise, then gamma (init 1), beta from the embedding"),
        ("het", "heteroscedastic head: per-image sigma in [sigma_min, sigma_max], Gaussian NLL"),
    ],
}

LEGEND_EXAMPLES = [
    {"prior_type": "standard"},
    {"prior_type": "mixture", "num_components": 10, "dirichlet_alpha": 1.5, "use_tau_classifier": True,
     "decoder_conditioning": "concat", "use_heteroscedastic_decoder": True, "reconstruction_loss": "mse"},
    {"prior_type": "vamp", "num_components": 20, "vamp_pseudo_init_method": "kmeans", "use_tau_classifier": True},
    {"prior_type": "geometric_mog", "num_components": 9, "geometric_arrangement": "grid",
     "latent_layout": "decentralized", "use_gumbel_softmax": True, "decoder_conditioning": "film"},
    {"prior_type": "mixture", "num_components": 20, "latent_layout": "decentralized", "use_gumbel_softmax": True,
     "decoder_conditioning": "cin", "use_heteroscedastic_decoder": True, "reconstruction_loss": "mse"},
]


def naming_legend(default_model: Mapping[str, Any]) -> str:
    """The NAMING_LEGEND.md text, built from the same tables and functions that name runs."""
    lines = [
        "# Naming legend",
        "",
        "Run folders are `results/<name>__<arch>__<ts>/`:",
        "",
        f"- `name`: the experiment name, sanitised (lowercase, runs outside `[a-z0-9-]` become `_`, "
        f"at most {MAX_NAME_LENGTH} characters); sweep points append `-<point label>`.",
        "- `arch`: `{prior}_{classifier}_{decoder}`, derived from the `model` section.",
        "- `ts`: `YYYYmmdd_HHMMSS`, local time when the run identity (data + model) was first planned.",
        "",
    ]
    for part, rows in LEGEND_PARTS.items():
        lines += [f"## {part}", ""]
        lines += document.table(["code", "meaning"], [[f"`{code}`", meaning] for code, meaning in rows])
        lines.append("")
    lines += ["## Examples (computed by `ssvae.naming.arch_code`)", ""]
    examples = []
    for example in LEGEND_EXAMPLES:
        model = {**default_model, **example}
        examples.append([", ".join(f"{k}={v}" for k, v in example.items()), f"`{arch_code(model)}`"])
    lines += document.table(["model settings", "arch code"], examples)
    lines.append("")
    return "\n".join(lines)
