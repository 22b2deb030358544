"""One workspace kept across many invocations: each change a researcher makes to configs/ trains exactly what is
new, and the folders already finished stay byte-identical (real `snakemake` on tiny configs)."""

import pytest
import yaml

from workflow_helpers import folder_hashes, make_workspace, run_folders, snakemake, tiny_config

pytestmark = pytest.mark.workflow


def trained_names(result):
    """Experiment names whose train job ran in this invocation (from Snakemake's `wildcards:` lines)."""
    names = []
    lines = result.output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() in ("rule train:", "localrule train:"):
            for follow in lines[i + 1:i + 12]:
                if follow.strip().startswith("wildcards:"):
                    names.append(follow.split("name=")[1].split(",")[0])
                    break
    return sorted(names)


def hashes(workspace):
    return {f.name: folder_hashes(f) for f in run_folders(workspace)}


def test_a_sequence_of_everyday_changes_trains_exactly_what_is_new(tmp_path):
    workspace = make_workspace(tmp_path / "ws", {"m.yaml": tiny_config("m")})
    configs = workspace / "configs"
    assert trained_names(snakemake(workspace)) == ["m"]

    def step(expected, change):
        before = hashes(workspace)
        change()
        result = snakemake(workspace)
        assert trained_names(result) == sorted(expected), result.output[-3000:]
        after = hashes(workspace)
        for name, files in before.items():  # nothing that was finished changed
            assert after.get(name) == files, name
        return result

    # a config whose file name sorts after the existing one, then one that sorts before
    step(["z"], lambda: (configs / "z.yaml").write_text(tiny_config("z")))
    step(["a"], lambda: (configs / "a.yaml").write_text(tiny_config("a")))
    # rename a file (same content, so the same experiment name), then delete one: nothing trains
    step([], lambda: (configs / "z.yaml").rename(configs / "y.yaml"))
    step([], lambda: (configs / "a.yaml").unlink())
    # a two-seed sweep, then one more seed
    step(["s-s1", "s-s2"], lambda: (configs / "s.yaml").write_text(tiny_config("s", sweep={"seeds": [1, 2]})))
    step(["s-s3"], lambda: (configs / "s.yaml").write_text(tiny_config("s", sweep={"seeds": [1, 2, 3]})))

    # two new configs while another one's model changes
    def add_two_edit_one():
        (configs / "b.yaml").write_text(tiny_config("b"))
        (configs / "c.yaml").write_text(tiny_config("c"))
        doc = yaml.safe_load((configs / "m.yaml").read_text())
        doc["model"]["learning_rate"] = 0.002
        (configs / "m.yaml").write_text(yaml.safe_dump(doc))

    step(["b", "c", "m"], add_two_edit_one)
    names = sorted(f.name.split("__")[0] for f in run_folders(workspace))
    assert names == ["a", "b", "c", "m", "m", "s-s1", "s-s2", "s-s3", "z"]
    assert snakemake(workspace).nothing_to_do
