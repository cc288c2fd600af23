"""The answers checker: grades the shipped example (one deliberate mistake) and rejects malformed files."""

from __future__ import annotations

import pytest
from conftest import REPO

from gradlab.verify import answers
from gradlab.runner.config import ConfigError

EXAMPLE = REPO / "configs" / "examples" / "answers.yaml"


def test_example_answers_are_graded_and_the_one_mistake_caught(cli):
    proc, metrics = cli("check_answers", f"answers={EXAMPLE}")
    assert proc.returncode == 0, proc.stderr
    wrong = [row for row in metrics["graded"] if not row["correct"]]
    assert metrics["summary"]["total"] == 9 and len(wrong) == 1
    assert (wrong[0]["section"], wrong[0]["index"], wrong[0]["quantity"]) == ("receptive_field", 2, "fields")
    assert wrong[0]["computed"] == [5, 9, 25] and wrong[0]["max_abs_error"] == 10


def test_a_correct_answer_within_tolerance_and_a_wrong_one_outside():
    entries = answers.parse({"autodiff": [{"x": 0.0, "forward": [1, 2, 3, 22.1671683, -1.2484405, 20.9187278]}]}, "f")
    assert answers.grade(entries, rtol=1e-6, atol=1e-6)[0]["correct"]
    entries = answers.parse({"linreg_hessian": [{"x": [0.0, 1.0], "hessian": [[4, 2], [2, 3]]}]}, "f")
    row = answers.grade(entries, rtol=1e-6, atol=1e-6)[0]
    assert not row["correct"] and row["computed"] == [[4, 2], [2, 2]] and row["max_abs_error"] == 1


@pytest.mark.parametrize(
    ("document", "names"),
    [
        ({"softmax": [{"logits": [0.0]}]}, "softmax"),
        ({"receptive_field": [{"layers": [{"kernel": 0, "stride": 1, "dilation": 1}], "fields": [1]}]},
         "receptive_field[0].layers[0].kernel"),
        ({"receptive_field": [{"layers": [{"kernel": 2.5}], "fields": [1]}]}, "receptive_field[0].layers[0].kernel"),
        ({"linreg_hessian": [{"x": [1.0, 2.0]}]}, "linreg_hessian[0]"),
        ({"linreg_hessian": [{"x": [1.0], "hessian": [[2, 2], [2, 2]], "colour": 1}]}, "linreg_hessian[0].colour"),
        ({"autodiff": "x=0"}, "autodiff"),
        ([1, 2], "answers"),
    ],
)
def test_malformed_entries_name_the_entry(document, names):
    with pytest.raises(ConfigError) as info:
        answers.parse(document, "f.yaml")
    assert names in str(info.value) and "\n" not in str(info.value)


def test_malformed_file_through_the_cli(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("receptive_field:\n  - layers: [{kernel: 3, stride: 0, dilation: 1}]\n    fields: [3]\n")
    proc, metrics = cli("check_answers", f"answers={bad}")
    assert proc.returncode == 2
    assert "bad.yaml:receptive_field[0].layers[0].stride" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and metrics["status"] == "failed"
    proc, _ = cli("check_answers", f"answers={tmp_path / 'absent.yaml'}")
    assert proc.returncode == 2 and "file not found" in proc.stderr
