"""Imported once by the tests' CLI server (cli_processes.py): Hydra's first compose in a process loads its
plugins and builds its override grammar's parser tables, ~0.3 s that every forked CLI would otherwise pay again."""

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from gradlab.runner.run import CONFIG_DIR

with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
    compose(config_name="logreg", overrides=["train.steps=1", "grid.resolution=3"], return_hydra_config=True)
GlobalHydra.instance().clear()
