"""What a run records about its environment: the lock's versions read as uv writes them."""

from __future__ import annotations

import tomllib

from gradlab.runner import meta


def test_the_locked_versions_are_those_a_toml_parser_reads_from_the_lock():
    """The fast reading of uv.lock (a pattern on the lines uv writes) against a full TOML parse of the same file."""
    text = meta.LOCK_FILE.read_text()
    parsed: dict[str, set[str]] = {}
    for package in tomllib.loads(text)["package"]:
        parsed.setdefault(package["name"], set()).add(package["version"])
    assert len(parsed) > 50 and meta.locked_versions(text) == parsed


def test_a_lock_rewritten_in_place_is_read_again(tmp_path):
    lock = tmp_path / "uv.lock"
    lock.write_text('version = 1\n\n[[package]]\nname = "numpy"\nversion = "0.0.1"\n')
    first = meta.lock_status(lock)
    lock.write_text('version = 1\n\n[[package]]\nname = "numpy"\nversion = "0.0.2"\nsource = { registry = "x" }\n')
    second = meta.lock_status(lock)
    assert "locked 0.0.1" in first["differs"]["numpy"] and "locked 0.0.2" in second["differs"]["numpy"]
    assert first["sha256"] != second["sha256"]
