"""Problems 4-6: analytic receptive fields against the measured support of d unit / d input."""


import jax
import numpy as np
import pytest
from conftest import experiment_module
from hypothesis import given, settings
from hypothesis import strategies as st

from gradlab.runner.config import ConfigError, validate
from gradlab.problems.receptive_field import (
    ConvSpec,
    input_gradients,
    input_length_for,
    receptive_field_analytic,
    receptive_field_measured,
)
from gradlab.runner.run import RunFailed

jax.config.update("jax_enable_x64", True)


# worked by hand from r_l = r_{l-1} + (k_eff - 1) j_{l-1}, j_l = j_{l-1} s_l (Problem 6: j = 2 after H1,
# so H2 adds (3 - 1) * 2 = 4 and H3, with k_eff = 2 * (5 - 1) + 1 = 9, adds (9 - 1) * 2 = 16)
PRESETS = {
    "problem4": ([ConvSpec(3, 1, 1)] * 3, [3, 5, 7]),
    "problem5": ([ConvSpec(7, 1, 1)] * 3, [7, 13, 19]),
    "problem6": ([ConvSpec(5, 2, 1), ConvSpec(3, 1, 1), ConvSpec(5, 1, 2)], [5, 9, 25]),
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_analytic_and_measured(preset):
    stack, expected = PRESETS[preset]
    assert receptive_field_analytic(stack)[0] == expected
    measured = receptive_field_measured(stack)
    assert measured.fields == expected
    assert measured.interior


conv_layers = st.builds(ConvSpec, st.integers(1, 5), st.integers(1, 3), st.integers(1, 3))


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


def test_cli_preset_and_reproducible(cli):
    proc, first = cli("receptive_field", "preset=problem4")
    assert proc.returncode == 0, proc.stderr
    assert first["config"]["layers"] == [{"kernel": 3, "stride": 1, "dilation": 1}] * 3
    assert first["receptive_field"]["analytic"] == [3, 5, 7]
    assert first["receptive_field"]["measured"] == [3, 5, 7]
    assert first["match"] is True
    assert "receptive_field.png" in first["plots"]
    proc, second = cli("receptive_field", "preset=problem4")
    assert proc.returncode == 0, proc.stderr
    assert second["receptive_field"] == first["receptive_field"]


def test_cli_custom_layers(cli):
    proc, metrics = cli("receptive_field", "layers=[{kernel:2,stride:1,dilation:3},{kernel:3}]")
    assert proc.returncode == 0, proc.stderr
    # layer 2 has the schema's stride and dilation defaults (1, 1): r = 4 + (3 - 1) * 1 = 6
    assert metrics["receptive_field"]["analytic"] == [4, 6]
    assert metrics["receptive_field"]["measured"] == [4, 6]
    assert metrics["receptive_field"]["nonzero_positions"] == [2, 6]


def test_cli_config_error_is_one_line_exit_2(cli):
    proc, _ = cli("receptive_field", "layers.0.kernel=0")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "layers[0].kernel" in lines[0], proc.stderr


@pytest.mark.parametrize(
    ("layers", "key"),
    [
        ([], "layers"),
        ([{"kernel": 0}], "kernel"),
        ([{"kernel": 3, "stride": 0}], "stride"),
        ([{"kernel": 3, "dilation": -1}], "dilation"),
        ([{"kernel": 2.5}], "kernel"),
        ([{"kernel": 3, "stride": "two"}], "stride"),
        ([{"kernel": 3, "padding": 1}], "padding"),
    ],
)
def test_bad_layers_are_config_errors(layers, key):
    schema = experiment_module("receptive_field").Config
    with pytest.raises(ConfigError) as err:
        validate({"layers": layers}, schema)
    assert key in str(err.value) and "\n" not in str(err.value)


def test_too_large_a_stack_fails_cleanly():
    experiment = experiment_module("receptive_field")
    cfg = validate({"max_input_length": 50}, experiment.Config)
    with pytest.raises(RunFailed, match="max_input_length"):
        experiment.main(cfg, ctx=None)
