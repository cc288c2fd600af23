"""The answers checker: grades the shipped example (one deliberate mistake) and rejects malformed files."""

from __future__ import annotations

import math
import time

import pytest
import yaml
from conftest import REPO, experiment_module

from gradlab.experiments import answers
from gradlab.runner.config import ConfigError

EXAMPLE = REPO / "configs" / "examples" / "answers.yaml"


def test_example_answers_are_graded_and_the_one_mistake_caught(run_experiment):
    code, metrics, _ = run_experiment("check_answers")  # the default: configs/examples/answers.yaml
    assert code == 0, metrics.get("error")
    assert metrics["answers_file"] == str(EXAMPLE)
    wrong = [row for row in metrics["graded"] if not row["correct"]]
    assert metrics["summary"] == {"total": 9, "correct": 8, "wrong": 1}
    assert (wrong[0]["section"], wrong[0]["index"], wrong[0]["quantity"]) == ("receptive_field", 2, "fields")
    assert wrong[0]["computed"] == [5, 9, 25] and wrong[0]["max_abs_error"] == 10


@pytest.mark.slow
def test_a_correct_answer_within_tolerance_and_a_wrong_one_outside():
    entries = answers.parse({"autodiff": [{"x": 0.0, "forward": [1, 2, 3, 22.1671683, -1.2484405, 20.9187278]}]}, "f")
    assert answers.grade(entries, rtol=1e-6, atol=1e-6)[0]["correct"]
    entries = answers.parse({"linreg_hessian": [{"x": [0.0, 1.0], "hessian": [[4, 2], [2, 3]]}]}, "f")
    row = answers.grade(entries, rtol=1e-6, atol=1e-6)[0]
    assert not row["correct"] and row["computed"] == [[4, 2], [2, 2]] and row["max_abs_error"] == 1


@pytest.mark.slow
def test_a_layer_leaves_out_stride_and_dilation_and_a_wrong_shape_is_wrong():
    entries = answers.parse({"receptive_field": [{"layers": [{"kernel": 3}, {"kernel": 3, "stride": 2},
                                                             {"kernel": 5, "dilation": 2}], "fields": [3, 5, 21]}],
                             "softmax_jacobian": [{"logits": [0.0, 0.0], "jacobian": [[0.25, -0.25]]}]}, "f")
    fields, jacobian = answers.grade(entries, rtol=1e-6, atol=1e-6)
    assert fields["correct"] and not jacobian["correct"] and jacobian["max_abs_error"] is None


@pytest.mark.parametrize(
    ("document", "names"),
    [
        ({"softmax": [{"logits": [0.0]}]}, "softmax"),
        ({"receptive_field": [{"layers": [{"kernel": 0, "stride": 1, "dilation": 1}], "fields": [1]}]},
         "receptive_field[0].layers[0].kernel"),
        ({"receptive_field": [{"layers": [{"kernel": 2.5}], "fields": [1]}]}, "receptive_field[0].layers[0].kernel"),
        ({"linreg_hessian": [{"x": [1.0, 2.0]}]}, "linreg_hessian[0]"),
        ({"linreg_hessian": [{"x": [1.0], "hessian": [[2, 2], [2, 2]], "colour": 1}]}, "linreg_hessian[0].colour"),
        ({"linreg_hessian": [{"hessian": [[2, 2], [2, 2]]}]}, "linreg_hessian[0].x='<missing>'"),
        ({"softmax_jacobian": [{"logits": [0, 1], "jacobian": [[1, "a"], [0, 1]]}]}, "softmax_jacobian[0].jacobian"),
        ({"autodiff": "x=0"}, "autodiff"),
        ([1, 2], "answers"),
    ],
)
def test_malformed_entries_name_the_entry(document, names):
    with pytest.raises(ConfigError) as info:
        answers.parse(document, "f.yaml")
    assert names in str(info.value) and "\n" not in str(info.value)


def test_malformed_file_is_a_config_error_naming_the_entry(run_experiment, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("receptive_field:\n  - layers: [{kernel: 3, stride: 0, dilation: 1}]\n    fields: [3]\n")
    code, metrics, _ = run_experiment("check_answers", f"answers={bad}")
    assert code == 2 and metrics["status"] == "failed"
    assert "bad.yaml:receptive_field[0].layers[0].stride" in metrics["error"]
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "file not found"),
        (b"softmax_jacobian:\n  - logits: [0.0, \xff\xfe]\n", "a UTF-8 text YAML file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a UTF-8 text YAML file"),
        (b"softmax_jacobian: [\n", "valid YAML"),
    ],
)
def test_absent_binary_or_broken_files_are_config_errors_naming_the_file(run_experiment, tmp_path, content, words):
    path = tmp_path / "answers.yaml"
    if content is not None:
        path.write_bytes(content)
    code, metrics, _ = run_experiment("check_answers", f"answers={path}")
    assert code == 2 and metrics["status"] == "failed"
    assert metrics["error"].startswith(f"config error: answers='{path}' is not allowed: ") and words in metrics["error"]


def test_a_relative_path_is_read_from_the_current_directory_first_then_the_repository(tmp_path, monkeypatch):
    answers_path = experiment_module("check_answers").answers_path
    monkeypatch.chdir(tmp_path)
    assert answers_path("configs/examples/answers.yaml") == EXAMPLE
    own = tmp_path / "configs" / "examples" / "answers.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("autodiff: [{x: 0.0, forward: [1, 2, 3, 22.16716829, -1.24844051, 20.91872778]}]\n")
    assert answers_path("configs/examples/answers.yaml") == own
    assert answers_path("absent.yaml") == tmp_path / "absent.yaml"


def billion_laughs(levels: int = 9, fanout: int = 10) -> str:
    """A few hundred bytes whose nested aliases expand to fanout**levels numbers, as the logits of one entry."""
    lines = ["a0: &a0 [" + ", ".join(["1.0"] * fanout) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nsoftmax_jacobian: [{{logits: *a{levels - 1}, jacobian: [[1.0]]}}]\n"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (billion_laughs(), "aliases that add at most"),
        ("softmax_jacobian: &loop [{logits: [0.0, 1.0], jacobian: *loop}]\n", "refers to its own anchor"),
        ("softmax_jacobian: " + "[" * 3000 + "]" * 3000 + "\n", "nested at most"),
    ],
)
def test_a_yaml_bomb_is_refused_quickly_naming_answers_and_the_file(run_experiment, tmp_path, text, words):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(text)
    started = time.perf_counter()
    code, metrics, _ = run_experiment("check_answers", f"answers={bomb}")
    assert time.perf_counter() - started < 10
    assert code == 2 and metrics["error"].startswith(f"config error: answers='{bomb}' is not allowed: ")
    assert words in metrics["error"] and str(bomb) in metrics["error"] and "\n" not in metrics["error"]
    assert "backend" not in metrics["meta"]  # refused before JAX started


def test_anchors_that_repeat_a_part_of_the_file_are_fine(run_experiment, tmp_path):
    own = tmp_path / "anchored.yaml"
    own.write_text("receptive_field:\n  - {layers: &stack [{kernel: 3}, {kernel: 3}], fields: [3, 5]}\n"
                   "  - {layers: *stack, fields: [3, 6]}\n")
    code, metrics, _ = run_experiment("check_answers", f"answers={own}")
    assert code == 0 and metrics["summary"] == {"total": 2, "correct": 1, "wrong": 1}


def test_the_alias_count_is_exact():
    root = yaml.compose("a: &x [1, 2]\nb: [*x, *x]\n")
    # written: the mapping, its 2 keys, [1, 2] and its 2 items, [*x, *x]: 7; expanded: [*x, *x] is 1 + 2 x 3
    assert answers.expanded_size(root) == (7, 13)
    assert answers.load(billion_laughs(levels=3)) is not None  # 10**3 numbers: within the allowance


@pytest.mark.parametrize(
    ("entry", "budget"),
    [
        ("{logits: [" + ", ".join(["0.5"] * 3000) + "], jacobian: [[1.0]]}", "null"),  # jacrev: ~2 n^3 floats
        ("{logits: [0.0, 1.0], jacobian: [[1.0]]}", "0.0000001"),  # reading it: ~200 bytes per byte
    ],
)
def test_answers_over_the_memory_budget_are_refused_before_any_array(run_experiment, tmp_path, entry, budget):
    big = tmp_path / "big.yaml"
    big.write_text(f"softmax_jacobian: [{entry}]\n")
    code, metrics, _ = run_experiment("check_answers", f"answers={big}", f"memory_budget_gb={budget}")
    assert code == 2 and metrics["error"].startswith(f"config error: answers='{big}' is not allowed: a config within "
                                                     "the memory budget")
    assert "backend" not in metrics["meta"]


# --------------------------------------------------------------------------------------------------------
# Problems 9 and 10 on any graph (section autodiff_tables): y = log(x1) + x1 x2 - sin(x2) at (2, 5), by hand here


def two_inputs_tables(x1: float = 2.0, x2: float = 5.0) -> dict:
    """The correct tables of configs/graph/two_inputs.yaml, written from the closed forms (not from the library)."""
    v1, v2, v3 = math.log(x1), x1 * x2, math.sin(x2)
    return {
        "at": {"x1": x1, "x2": x2},
        "values": {"v1": v1, "v2": v2, "v3": v3, "v4": v1 + v2, "v5": v1 + v2 - v3},
        "tangents": {"x1": {"v1": 1 / x1, "v2": x2, "v3": 0.0, "v4": 1 / x1 + x2, "v5": 1 / x1 + x2},
                     "x2": {"v1": 0.0, "v2": x1, "v3": math.cos(x2), "v4": x1, "v5": x1 - math.cos(x2)}},
        "adjoints": {"v4": 1.0, "v3": -1.0, "v2": 1.0, "v1": 1.0, "x2": x1 - math.cos(x2), "x1": 1 / x1 + x2},
    }


def graded(document: dict, config_graph: dict | None = None) -> list[dict]:
    return answers.grade(answers.parse(document, "f.yaml", config_graph), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_correct_tables_on_the_two_inputs_graph_are_all_correct_by_both_routes():
    rows = graded({"graph": "two_inputs", "autodiff_tables": [two_inputs_tables(), two_inputs_tables(0.5, -1.0)]})
    assert len(rows) == 2 * (5 + 2 * 5 + 6)  # values of 5 nodes, 2 tangent columns of 5, 6 adjoints
    assert all(row["correct"] and row["routes_agree"] for row in rows)
    assert {row["quantity"] for row in rows} >= {"values.v5", "tangents.x2.v3", "adjoints.x1"}


def test_a_planted_wrong_tangent_and_adjoint_are_caught_with_the_expected_value():
    tables = two_inputs_tables()
    tables["tangents"]["x2"]["v3"] = -math.cos(5.0)  # d sin/dx taken as -cos
    tables["adjoints"]["x2"] = 2.0  # x2 feeds v2 and v3: the path through v3 forgotten
    wrong = [row for row in graded({"graph": "two_inputs", "autodiff_tables": [tables]}) if not row["correct"]]
    assert [row["quantity"] for row in wrong] == ["tangents.x2.v3", "adjoints.x2"]
    assert wrong[0]["computed"] == pytest.approx(math.cos(5.0), rel=1e-14)
    assert wrong[1]["computed"] == pytest.approx(2.0 - math.cos(5.0), rel=1e-14)
    assert wrong[1]["jax"] == pytest.approx(wrong[1]["computed"], rel=1e-12)
    assert wrong[1]["max_abs_error"] == pytest.approx(math.cos(5.0), rel=1e-12)


def test_the_shipped_two_inputs_example_has_its_one_mistake_caught():
    document = answers.load((REPO / "configs" / "examples" / "answers_two_inputs.yaml").read_text())
    wrong = [row for row in graded(document) if not row["correct"]]
    assert [(row["quantity"], row["answer"]) for row in wrong] == [("adjoints.x2", 2.0)]


@pytest.mark.slow
def test_an_inline_graph_and_the_configs_graph_are_graded():
    # one logistic neuron: y = -log(sigmoid(1.5 w + b)) at w = 0.5, b = -0.2 (output an expression, named y)
    w, b = 0.5, -0.2
    p = 1 / (1 + math.exp(-(1.5 * w + b)))
    graph = {"inputs": {"w": w, "b": b}, "nodes": {"z": "w * 1.5 + b", "p": "sigmoid(z)"}, "output": "-log(p)"}
    tables = {"values": {"z": 1.5 * w + b, "p": p, "y": -math.log(p)},
              "adjoints": {"p": -1 / p, "z": p - 1, "b": p - 1, "w": 1.5 * (p - 1)}}
    rows = graded({"graph": graph, "autodiff_tables": [tables]})
    assert len(rows) == 7 and all(row["correct"] for row in rows)
    # the file names no graph: the config's (here two_inputs, as `graph=two_inputs` composes it) is used
    spec = yaml.safe_load((REPO / "configs" / "graph" / "two_inputs.yaml").read_text())
    rows = graded({"autodiff_tables": [{k: v for k, v in two_inputs_tables().items() if k != "at"}]}, spec)
    assert len(rows) == 21 and all(row["correct"] for row in rows)


def test_the_homework_graph_is_the_default_and_a_bare_number_is_its_point():
    # dy/dx at 0 = 3 (e^2 + cos 2); the preset has 8 points, so the tables name theirs
    rows = graded({"autodiff_tables": [{"at": 0.0, "adjoints": {"f5": 1, "f4": 1, "f3": 6.97290926, "f2": 6.97290926,
                                                                 "f1": 20.91872778, "x": 20.91872778}}]})
    assert len(rows) == 6 and all(row["correct"] for row in rows)


@pytest.mark.parametrize(
    ("document", "names"),
    [
        ({"graph": "two_inputs", "autodiff_tables": [{"values": {"v1": 0.69, "v9": 1.0}}]},
         "f.yaml:autodiff_tables[0].values.v9=1.0 is not allowed: a name in the table of node values"),
        ({"graph": "two_inputs", "autodiff_tables": [{"adjoints": {"v4": 1, "v3": -1, "v2": 1, "v1": 1, "x1": 5.5}}]},
         "autodiff_tables[0].adjoints.x2='<missing>'"),
        ({"graph": "two_inputs", "autodiff_tables": [{"tangents": {"x1": {"v1": 0.5}, "x2": {}, "x3": {}}}]},
         "autodiff_tables[0].tangents.x3"),
        ({"graph": "two_inputs", "autodiff_tables": [{"at": {"x1": 2.0}, "values": {"v1": 0.69}}]},
         "autodiff_tables[0].at={'x1': 2.0}"),
        ({"graph": "two_inputs", "autodiff_tables": [{**two_inputs_tables(), "at": {"x1": -2.0, "x2": 5.0}}]},
         "autodiff_tables[0].at={'x1': -2.0, 'x2': 5.0} is not allowed: a point where every node is defined and "
         "finite: node v1 = log(x1): log of a negative value: x1 = -2.0"),
        ({"autodiff_tables": [{"values": {"f1": 1.0}}]}, "autodiff_tables[0].at='<missing>'"),
        ({"graph": "two_inputs", "autodiff_tables": [{"at": {"x1": 2.0, "x2": 5.0}}]}, "autodiff_tables[0]"),
        ({"graph": "three_inputs", "autodiff_tables": [{"values": {"a": 0.0}}]}, "f.yaml:graph='three_inputs'"),
        ({"graph": {"inputs": {"x": 1.0}, "nodes": {"a": "b * 2", "b": "exp(x)"}, "output": "b"},
          "autodiff_tables": [{"values": {"a": 0.0}}]}, "f.yaml:graph.nodes.a='b * 2' is not allowed: uses b"),
        ({"graph": {"inputs": {"x": 1.0}, "nodes": {"a": "log(x"}, "output": "a"},
          "autodiff_tables": [{"values": {"a": 0.0}}]}, "graph.nodes.a='log(x' is not allowed: expected ')'"),
        ({"graph": {"inputs": {"x": 1.0}, "nodes": {"a": "exp(x)"}, "output": "a", "colour": 1},
          "autodiff_tables": [{"values": {"a": 0.0}}]}, "f.yaml:graph.colour"),
        ({"graph": "two_inputs", "softmax_jacobian": [{"logits": [0.0], "jacobian": [[0.0]]}]}, "f.yaml:graph"),
    ],
)
def test_bad_tables_or_graphs_are_refused_in_one_line_naming_the_entry(document, names):
    with pytest.raises(ConfigError) as info:
        answers.parse(document, "f.yaml")
    assert names in str(info.value) and "\n" not in str(info.value)


def test_the_config_graph_grades_a_file_that_names_none_and_a_refused_one_stops_in_one_line(run_experiment, tmp_path,
                                                                                             capsys):
    tables = two_inputs_tables()
    tables["values"]["v3"] = math.cos(5.0)  # sin read as cos
    own = tmp_path / "tables.yaml"
    own.write_text(yaml.safe_dump({"autodiff_tables": [tables]}))
    code, metrics, _ = run_experiment("check_answers", f"answers={own}", "graph=two_inputs")
    assert code == 0 and metrics["summary"] == {"total": 21, "correct": 20, "wrong": 1}
    (wrong,) = [row for row in metrics["graded"] if not row["correct"]]
    assert wrong["quantity"] == "values.v3" and wrong["computed"] == pytest.approx(math.sin(5.0), rel=1e-14)
    capsys.readouterr()
    code, metrics, _ = run_experiment("check_answers", f"answers={own}", "graph=two_inputs", "graph.nodes.v3='sin(v9)'")
    assert code == 2 and metrics["error"].startswith("config error: graph.nodes.v3='sin(v9)' is not allowed: 'v9' is "
                                                     "not defined")
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
