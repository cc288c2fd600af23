"""The forked child of a run: used only while no XLA thread pool exists in the parent (fork would copy its locks)."""

from __future__ import annotations

import os

import jax

from gradlab.runner import process


class _Record:
    name = "test"


def test_a_process_where_jax_has_started_runs_the_experiment_without_forking():
    jax.devices()  # starts the CPU backend and its threads
    parent = os.getpid()
    assert process.supervise(_Record(), lambda: 7 if os.getpid() == parent else 99) == 7
