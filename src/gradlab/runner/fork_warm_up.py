"""Imported last by a server that forks runs (the main job's forkserver, `experiments/run_all.py`): what every
forked run would otherwise pay again, done once in the server.

- Hydra's first compose in a process discovers its plugins and builds its override grammar's parser: a forked
  process's first compose takes 0.33 CPU-s, 0.10 once the server has composed;
- the environment against uv.lock (`meta.lock_status`, every run's record): 115 installed packages' metadata read and
  parsed, 0.15 CPU-s a run; cached by the lock file's modification time and size, so a changed lock is read again;
- `gc.freeze()`: everything the server has made moves out of the garbage collector's reach, so that a run's
  collections neither walk it (a full collection of JAX, Hydra and Matplotlib's objects takes ~0.2 s) nor write to
  its pages (copying them, shared until then).
"""

import contextlib
import gc

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from gradlab.runner.meta import lock_status
from gradlab.runner.run import CONFIG_DIR

# only time is at stake: a compose that fails here (it would fail in the run too, which then says why) must not
# stop the server, whose failure to import a module would end every run it was to fork
with contextlib.suppress(Exception), initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
    compose(config_name="softmax_jacobian", return_hydra_config=True)
GlobalHydra.instance().clear()
lock_status()
gc.freeze()
