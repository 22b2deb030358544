"""Names: sanitising, arch codes byte-compatible with the earlier system, run-id parsing, the legend."""

import itertools
import re

import pytest

from ssvae import config, naming

DEFAULT_MODEL = config.defaults()["model"]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("baseline", "baseline"),
        ("  My Experiment! ", "my_experiment"),
        ("mix__test", "mix_test"),
        ("a/b c", "a_b_c"),
        ("é-x", "x"),
        ("-Lead_and-trail-", "lead_and-trail"),
        ("x" * 80, "x" * 64),
        ("a" * 63 + "_b", "a" * 63),
    ],
)
def test_sanitize_name(raw, expected):
    assert naming.sanitize_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "___", "!!!", "-_-"])
def test_sanitize_name_rejects_empty(raw):
    with pytest.raises(naming.NamingError, match="empty after sanitising"):
        naming.sanitize_name(raw)


@pytest.mark.parametrize(
    "settings, code",
    [
        ({}, "std_head_plain"),
        ({"use_heteroscedastic_decoder": True}, "std_head_het"),
        ({"prior_type": "mixture", "num_components": 10, "dirichlet_alpha": 1.5, "use_tau_classifier": True,
          "decoder_conditioning": "concat", "use_heteroscedastic_decoder": True}, "mix10-dir_tau_ca-het"),
        ({"prior_type": "geometric_mog", "num_components": 9, "geometric_arrangement": "grid",
          "latent_layout": "decentralized", "use_gumbel_softmax": True, "decoder_conditioning": "film"},
         "geo9-grid-dec-gbl_head_film"),
        ({"prior_type": "mixture", "num_components": 20, "latent_layout": "decentralized",
          "use_gumbel_softmax": True, "decoder_conditioning": "cin", "use_heteroscedastic_decoder": True},
         "mix20-dec-gbl_head_cin-het"),
        ({"prior_type": "vamp", "num_components": 20, "vamp_pseudo_init_method": "kmeans",
          "use_tau_classifier": True}, "vamp20-km_tau_plain"),
        ({"prior_type": "vamp", "num_components": 5, "vamp_pseudo_init_method": "random"}, "vamp5-rand_head_plain"),
        ({"prior_type": "mixture", "dirichlet_alpha": 0.0}, "mix10_head_plain"),
        ({"prior_type": "mixture", "use_component_aware_decoder": True}, "mix10_head_ca"),
        ({"prior_type": "mixture", "use_component_aware_decoder": True, "decoder_conditioning": "cin"},
         "mix10_head_cin"),
    ],
)
def test_arch_code_examples(settings, code):
    assert naming.arch_code({**DEFAULT_MODEL, **settings}) == code


def _valid_models():
    """Every combination of the options the arch code names that passes validation."""
    priors = [
        {"prior_type": "standard"},
        *[{"prior_type": "mixture", "dirichlet_alpha": a, "latent_layout": layout, "use_gumbel_softmax": g}
          for a, layout, g in itertools.product([None, 2.0], ["shared", "decentralized"], [False, True])],
        {"prior_type": "vamp", "vamp_pseudo_init_method": "kmeans"},
        {"prior_type": "vamp", "vamp_pseudo_init_method": "random"},
        *[{"prior_type": "geometric_mog", "num_components": 9, "geometric_arrangement": arr, "latent_layout": layout,
           "use_gumbel_softmax": g}
          for arr, layout, g in itertools.product(["circle", "grid"], ["shared", "decentralized"], [False, True])],
    ]
    for prior, tau, cond, het in itertools.product(priors, [False, True], ["none", "concat", "film", "cin"],
                                                   [False, True]):
        yield {**prior, "use_tau_classifier": tau, "decoder_conditioning": cond,
               "use_heteroscedastic_decoder": het, "reconstruction_loss": "mse" if het else "bce"}


def test_every_valid_config_gets_a_parseable_code(tmp_path):
    import yaml

    codes = set()
    for i, model in enumerate(_valid_models()):
        path = tmp_path / f"c{i}.yaml"
        path.write_text(yaml.safe_dump({"data": {"dataset": "digits"}, "model": model}))
        plan = config.load_plans(path)[0]
        if not plan.ok:
            continue
        code = plan.arch
        assert naming.is_arch_code(code), code
        run_id = naming.RunId(plan.name, code, "20260101_120000")
        assert naming.RunId.parse(str(run_id)) == run_id
        codes.add(code)
    assert len(codes) > 60
    assert not any(code.startswith("vamp") and ("_ca" in code or "film" in code or "cin" in code) for code in codes)


def test_run_id_round_trip_and_rejects():
    run_id = naming.RunId.parse("my_exp-lr0p001__mix10-dir_tau_ca-het__20261126_134500")
    assert (run_id.name, run_id.arch, run_id.ts) == ("my_exp-lr0p001", "mix10-dir_tau_ca-het", "20261126_134500")
    assert str(run_id) == "my_exp-lr0p001__mix10-dir_tau_ca-het__20261126_134500"
    for bad in ["exp__std_head_plain", "exp__nope__20261126_134500", "a__b__std_head_plain__20261126_134500",
                "Exp__std_head_plain__20261126_134500", "exp__std_head_plain__2026-11-26"]:
        with pytest.raises(naming.NamingError):
            naming.RunId.parse(bad)


def test_wildcard_patterns_split_run_ids_unambiguously():
    pattern = re.compile(rf"({naming.NAME_PATTERN})__({naming.ARCH_PATTERN})__({naming.TS_PATTERN})")
    match = pattern.fullmatch("a_b-c__geo9-grid-dec-gbl_head_film__20260101_000000")
    assert match.groups() == ("a_b-c", "geo9-grid-dec-gbl_head_film", "20260101_000000")


def test_legend_examples_come_from_the_naming_code():
    legend = naming.naming_legend(DEFAULT_MODEL)
    assert "# Naming legend" in legend
    assert "`mix10-dir_tau_ca-het`" in legend
    assert "`geo9-grid-dec-gbl_head_film`" in legend
    for part in ["## prior", "## classifier", "## decoder"]:
        assert part in legend


def test_every_legend_table_row_has_as_many_cells_as_its_header():
    """`|` inside a meaning (p(z|c), q(z_k|x), p(y|x)) is escaped, so no row splits into extra cells."""
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render(naming.naming_legend(DEFAULT_MODEL))
    tables = re.findall(r"<table>(.*?)</table>", html, flags=re.S)
    assert len(tables) == 4
    for table in tables:
        header = len(re.findall(r"<th>", table))
        for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]:
            assert len(re.findall(r"<td>", row)) == header, row
    assert "<td>mixture prior with K components (p(z|c) = N(0, I)" in html
