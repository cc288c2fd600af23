"""Problems 4-6: analytic receptive fields against the measured support of d unit / d input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_refused_over_budget, validated_config
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.problems.receptive_field import (
    ConvSpec,
    input_gradients,
    input_length_for,
    receptive_field_analytic,
    receptive_field_measured,
)
from gradlab.runner.config import ConfigError

# worked by hand from r_l = r_{l-1} + (k_eff - 1) j_{l-1}, j_l = j_{l-1} s_l (Problem 6: j = 2 after H1,
# so H2 adds (3 - 1) * 2 = 4 and H3, with k_eff = 2 * (5 - 1) + 1 = 9, adds (9 - 1) * 2 = 16)
PRESETS = {
    "problem4": ([ConvSpec(3, 1, 1)] * 3, [3, 5, 7]),
    "problem5": ([ConvSpec(7, 1, 1)] * 3, [7, 13, 19]),
    "problem6": ([ConvSpec(5, 2, 1), ConvSpec(3, 1, 1), ConvSpec(5, 1, 2)], [5, 9, 25]),
}


@pytest.mark.slow
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_analytic_and_measured(preset):
    stack, expected = PRESETS[preset]
    assert [layer.spec() for layer in validated_config("receptive_field", f"preset={preset}").layers] == stack
    assert receptive_field_analytic(stack)[0] == expected
    measured = receptive_field_measured(stack)
    assert measured.fields == expected
    assert measured.interior


def test_problem6_is_the_default_stack():
    assert [layer.spec() for layer in validated_config("receptive_field").layers] == PRESETS["problem6"][0]


conv_layers = st.builds(ConvSpec, st.integers(1, 5), st.integers(1, 3), st.integers(1, 3))


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(stack=st.lists(conv_layers, min_size=1, max_size=4))
def test_random_stacks_analytic_equals_measured(stack):
    analytic, jumps = receptive_field_analytic(stack)
    measured = receptive_field_measured(stack)
    assert measured.interior
    assert measured.fields == analytic
    assert all(1 <= n <= r for n, r in zip(measured.nonzero, analytic, strict=True))
    assert jumps[-1] == int(np.prod([s.stride for s in stack]))


def test_dilation_leaves_holes_inside_the_field():
    # taps at offsets 0 and 3: the field spans 4 positions, only 2 of them are seen
    measured = receptive_field_measured([ConvSpec(2, 1, 3)])
    assert measured.fields == [4] and measured.nonzero == [2]


def test_the_interior_check_catches_a_too_short_input():
    stack, expected = PRESETS["problem5"]
    short = receptive_field_measured(stack, length=15)
    assert not short.interior and short.fields[-1] < expected[-1]
    assert input_length_for(stack) >= 2 * expected[-1]


def test_gradient_counts_paths():
    # two kernel-3 layers of ones: the unit is the sum over 3 x 3 paths, so d unit / d input = 1 2 3 2 1
    row = input_gradients([ConvSpec(3, 1, 1)] * 2, length=11)[1]
    np.testing.assert_array_equal(row[row > 0], [1, 2, 3, 2, 1])


def test_preset_run_in_process(run_experiment):
    code, metrics, run_dir = run_experiment("receptive_field", "preset=problem4", figures=True)
    assert code == 0, metrics.get("error")
    assert metrics["config"]["layers"] == [{"kernel": 3, "stride": 1, "dilation": 1}] * 3
    assert metrics["receptive_field"]["analytic"] == [3, 5, 7]
    assert metrics["receptive_field"]["measured"] == [3, 5, 7]
    assert metrics["match"] is True and metrics["stack"] == "k3s1d1 -> k3s1d1 -> k3s1d1"
    assert "receptive_field.png" in metrics["plots"] and (run_dir / "receptive_field.png").is_file()


def test_custom_layers_in_process(run_experiment):
    code, metrics, _ = run_experiment("receptive_field", "layers=[{kernel:2,stride:1,dilation:3},{kernel:3}]")
    assert code == 0, metrics.get("error")
    # layer 2 leaves out stride and dilation, which are 1: r = 4 + (3 - 1) * 1 = 6
    assert metrics["receptive_field"]["analytic"] == [4, 6]
    assert metrics["receptive_field"]["measured"] == [4, 6]
    assert metrics["receptive_field"]["nonzero_positions"] == [2, 6]


@pytest.mark.parametrize(
    ("layers", "key"),
    [
        ("[]", "layers"),
        ("[{kernel:0}]", "layers[0].kernel"),
        ("[{kernel:3,stride:0}]", "layers[0].stride"),
        ("[{kernel:3,dilation:-1}]", "layers[0].dilation"),
        ("[{kernel:2.5}]", "layers[0].kernel"),
        ("[{kernel:3,stride:two}]", "layers[0].stride"),
        ("[{kernel:3,padding:1}]", "layers[0].padding"),
        ("[{kernel:3},{stride:2}]", "layers[1].kernel"),
    ],
)
def test_bad_layers_are_config_errors(layers, key):
    with pytest.raises(ConfigError) as err:
        validated_config("receptive_field", f"layers={layers}")
    assert key in str(err.value) and "\n" not in str(err.value)


def test_too_large_a_stack_is_a_config_error_naming_max_input_length(run_experiment):
    code, metrics, _ = run_experiment("receptive_field", "max_input_length=50")
    assert code == 2 and metrics["status"] == "failed"
    assert metrics["error"].startswith("config error: max_input_length=50 is not allowed: at least 59")


@pytest.mark.parametrize(
    "overrides",
    [
        ("layers=[{kernel:3,dilation:100000000000}]", "max_input_length=1000000000000"),  # 1.6 TB of gradients
        ("memory_budget_gb=0.000001",),  # 6 KB of gradients for the default stack
        ("layers=[" + ",".join(["{kernel:1}"] * 300) + "]", "memory_budget_gb=1"),  # a traced pullback per layer
    ],
)
def test_a_stack_over_the_memory_budget_is_refused_before_any_array(run_experiment, overrides):
    assert_refused_over_budget(run_experiment("receptive_field", *overrides), "layers")


def test_a_huge_max_input_length_alone_costs_nothing(run_experiment):
    code, metrics, _ = run_experiment("receptive_field", "max_input_length=100000000000")
    assert code == 0 and metrics["input_length"] == 59
