"""Names that become paths stay inside their folder: `hydra.job.name`, the main job's run ids (issue 23, item 6)."""

from __future__ import annotations

import pytest
from conftest import QUIET_HYDRA, compose_config
from omegaconf import OmegaConf

from gradlab import cli
from gradlab.runner import dirs
from gradlab.runner.config import ConfigError, validate

LEAVING = ["..", "../x", "../../../../tmp/x", "/tmp/x", ".", "", "a/b", "a/../..", "x\0y"]


@pytest.mark.parametrize("name", ["logreg", "my run", "..x", "x..", ".hidden", "a\\b", "ünï"])
def test_a_folder_name_stays_inside(name):
    assert dirs.stays_inside(name)
    dirs.check_name("hydra.job.name", name)


@pytest.mark.parametrize("name", LEAVING)
def test_a_name_leaving_its_folder_is_refused(name):
    assert not dirs.stays_inside(name)
    with pytest.raises(ConfigError) as err:
        dirs.check_name("hydra.job.name", name)
    assert str(err.value) == f"config error: hydra.job.name={name!r} is not allowed: {dirs.INSIDE}"
    with pytest.raises(ConfigError, match=r"^config error: runs\[1\]\.id="):
        dirs.check_names("runs[{}].id", ["fine", name])


@pytest.mark.parametrize("hook", ["on_run_start", "on_multirun_start"])
def test_job_name_refused_before_the_run_directory_is_made(tmp_path, capsys, hook):
    """Resolving hydra.run.dir creates the directory (gradlab_unique_dir): the name is checked before that."""
    pattern = "${gradlab_unique_dir:" + str(tmp_path / "outputs") + "/${hydra.job.name}/" + hook + "}"
    config = OmegaConf.create({"hydra": {"job": {"name": "../../escaped"}, "run": {"dir": pattern},
                                         "sweep": {"dir": pattern, "subdir": "${hydra.job.num}"}}})
    with pytest.raises(SystemExit) as done:
        getattr(dirs.ClaimRunDirs(), hook)(config)
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1
    assert err.startswith("gradlab: config error: hydra.job.name='../../escaped' is not allowed: one folder name")
    assert list(tmp_path.rglob("*")) == []  # nothing made, inside or outside outputs/


@pytest.mark.parametrize("run_id", ["../escaped", "/tmp/escaped", "."])
def test_run_all_refuses_a_run_id_leaving_its_folder(run_id):
    from gradlab.experiments import run_all

    cfg = validate(compose_config("run_all", f"runs=[{{id: '{run_id}', script: softmax_jacobian}}]"), run_all.Config)
    with pytest.raises(ConfigError) as err:
        run_all.check_config(cfg)
    assert str(err.value).startswith(f"config error: runs[0].id={run_id!r} is not allowed: one folder name")


@pytest.mark.parametrize("multirun", [[], ["-m"]])
def test_cli_refuses_a_job_name_leaving_outputs(hydra_in_process, tmp_path, capsys, multirun):
    """The issue's case: `hydra.job.name=../../../../tmp/x` wrote a run outside outputs/ and said ok."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path / "a" / "b")
        code = cli.main(["softmax_jacobian", *multirun, *QUIET_HYDRA, "hydra.job.name=../../x"])
    err = capsys.readouterr().err
    assert code == 2 and err == f"gradlab: config error: hydra.job.name='../../x' is not allowed: {dirs.INSIDE}\n"
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*")] == [p.relative_to(tmp_path) for p in
                                                                      (tmp_path / "a", tmp_path / "a" / "b")]


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../../x"])
def test_a_search_study_name_leaving_its_folder_is_refused(name):
    """`dir: outputs/<experiment>/search/${study_name}`: study_name=.. put the trials in outputs/<experiment>/."""
    from gradlab.runner.run import CONFIG_DIR
    from gradlab.runner.search_space import parse_search

    shipped = OmegaConf.load(CONFIG_DIR / "hpo" / "logreg_optuna.yaml")
    shipped.study_name = name
    with pytest.raises(ConfigError) as err:
        parse_search(OmegaConf.to_container(shipped, resolve=True))
    assert err.value.key == "search.study_name" and "not '.' or '..'" in err.value.allowed


@pytest.mark.parametrize(("job_dir", "refused"), [
    ("sweep/0", False), ("sweep/a=1/b=x", False), ("sweep/tags=[../../x]", False),  # tags=[.., .., x]: inside
    ("sweep", True), ("elsewhere", True), ("sweep/a=../../../x", True)])
def test_a_sweep_job_outside_its_sweep_is_refused_before_it_runs(tmp_path, capsys, job_dir, refused):
    """hydra.sweep.subdir=${hydra.job.override_dirname} holds the jobs' override values, `..` included."""
    from hydra.types import RunMode

    config = OmegaConf.create({"hydra": {"mode": RunMode.MULTIRUN, "job": {"override_dirname": job_dir[6:]},
                                         "sweep": {"dir": str(tmp_path / "sweep"),
                                                   "subdir": "${hydra.job.override_dirname}"},
                                         "runtime": {"output_dir": str(tmp_path / job_dir)}}})
    if not refused:
        dirs.ClaimRunDirs().on_job_start(config)
        return
    with pytest.raises(SystemExit) as done:
        dirs.ClaimRunDirs().on_job_start(config)
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1
    assert err.startswith("gradlab: config error: hydra.sweep.subdir=") and "inside the sweep's" in err
    config.hydra.mode = RunMode.RUN  # a single run goes wherever hydra.run.dir says
    dirs.ClaimRunDirs().on_job_start(config)
