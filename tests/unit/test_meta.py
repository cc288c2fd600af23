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


def test_a_compile_cache_that_cannot_be_written_is_a_warning_and_no_cache(tmp_path, caplog):
    """A read-only folder (or a path under a file: refused the same way, whoever runs the test) used to fail the
    whole run; the cache only saves time, so the run goes on without it."""
    import jax

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    before = jax.config.jax_compilation_cache_dir, jax.config.jax_enable_compilation_cache
    try:
        with caplog.at_level("WARNING", logger="gradlab"):
            assert meta.set_compile_cache(str(blocked / "cache")) is None
        assert jax.config.jax_enable_compilation_cache is False
        (warning,) = [r.getMessage() for r in caplog.records if r.name == "gradlab"]
        assert "compile_cache=" in warning and "cannot be used" in warning and "\n" not in warning
        assert meta.set_compile_cache(str(tmp_path / "ok" / "cache")) == str(tmp_path / "ok" / "cache")
        assert jax.config.jax_enable_compilation_cache is True and (tmp_path / "ok" / "cache").is_dir()
        assert not list((tmp_path / "ok" / "cache").iterdir())  # the probe file is gone
    finally:
        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_enable_compilation_cache", before[1])
