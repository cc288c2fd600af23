"""Grade a student's numeric answers to Homework 1 against the values the library computes.

    python experiments/check_answers.py                                    # the example in configs/examples/
    python experiments/check_answers.py answers=my_answers.yaml rtol=1e-3
    python experiments/check_answers.py answers=configs/examples/answers_two_inputs.yaml   # tables on any graph
    python experiments/check_answers.py answers=my_tables.yaml graph=neuron   # the graph, where the file names none

The answers schema is documented in src/gradlab/experiments/answers.py. A relative `answers` path is read from the
current directory, or else from the repository (so the default works from anywhere). A wrong answer is shown
with the computed value and the error beside it; a malformed file stops with one line naming the entry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import yaml

from gradlab.experiments import answers, memory
from gradlab.experiments.autodiff_modes import GraphConfig
from gradlab.runner.config import ConfigError, at_least, checked
from gradlab.runner.run import REPO_ROOT, BaseConfig, RunContext, launch, memory_budget_bytes

# Memory per byte of an answers file while it is read (PyYAML's nodes and objects), validated and graded (measured:
# a 2 MB file of numbers peaks 0.44 GB above the interpreter's own).
READ_BYTES_PER_BYTE = 200


@dataclass
class Config(BaseConfig):
    answers: str = checked(lambda p: bool(p), "a path to a YAML answers file")
    rtol: float = at_least(0.0)
    atol: float = at_least(0.0)
    graph: GraphConfig  # the graph of autodiff_tables where the answers file names none (configs/graph/)


def answers_path(value: str) -> Path:
    """The answers file as an absolute path: `value` from the current directory, or else from the repository."""
    path = Path(value).expanduser().absolute()
    in_repo = REPO_ROOT / Path(value).expanduser()
    return in_repo if not path.exists() and in_repo.exists() else path


def read_answers(value: str) -> tuple[Path, object]:
    """The resolved path and the parsed YAML document; a missing, unreadable or non-YAML file is a ConfigError."""
    path = answers_path(value)
    if not path.is_file():
        where = "" if Path(value).expanduser().is_absolute() else f" in {Path.cwd()} or {REPO_ROOT}"
        raise ConfigError("answers", value, f"an existing YAML answers file (file not found{where})")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError("answers", value, f"a UTF-8 text YAML file ({path} is not: byte {err.start} "
                          "is not UTF-8)") from None  # the file's content is never quoted
    except OSError as err:
        raise ConfigError("answers", value, f"a readable file ({err.strerror})") from None
    try:
        return path, answers.load(text)
    except yaml.YAMLError as err:
        raise ConfigError("answers", value, f"valid YAML ({path}: {str(err).splitlines()[0]})") from None
    except ValueError as err:
        raise ConfigError("answers", value, f"{err} ({path})") from None


def memory_estimate(cfg: Config) -> dict[str, float]:
    """Bytes of grading the answers file: reading it (~200 bytes per byte of YAML), and for each Problem 1 entry
    with n logits the autodiff Jacobian (jax.jacrev of the per-class softmax holds ~two n x n x n arrays: see the
    softmax_jacobian experiment). A file too large to read within the budget is not read; a file that cannot be
    read or parsed is refused here, before any array, as it would be in main."""
    path = answers_path(cfg.answers)
    if not path.is_file():
        return {}  # main says it is not there
    reading = path.stat().st_size * READ_BYTES_PER_BYTE
    if reading > memory_budget_bytes(cfg.memory_budget_gb):
        return {"answers": reading}
    path, document = read_answers(cfg.answers)
    grading = sum(2 * len(entry.logits) ** 3 * memory.word(cfg.precision)
                  for section, _, entry in answers.parse(document, path.name, dataclasses.asdict(cfg.graph))
                  if section == "softmax_jacobian")
    return {"answers": reading + grading}


def main(cfg: Config, ctx: RunContext) -> dict:
    path, document = read_answers(cfg.answers)
    rows = answers.grade(answers.parse(document, path.name, dataclasses.asdict(cfg.graph)), cfg.rtol, cfg.atol)
    for row in rows:
        where = f"{row['section']}[{row['index']}].{row['quantity']}"
        if not row.get("routes_agree", True):
            ctx.warn(f"{where}: the walk by hand ({row['computed']!r}) and JAX ({row['jax']!r}) disagree beyond "
                     "rtol/atol: the answer is judged against both")
        if row["correct"]:
            ctx.log.info("correct  %s", where)
        else:
            by_jax = f" (JAX {row['jax']!r})" if "jax" in row else ""
            ctx.log.info("WRONG    %s: answer %s, computed %s%s, max abs error %s", where, row["answer"],
                         row["computed"], by_jax, row["max_abs_error"])
    correct = sum(row["correct"] for row in rows)
    ctx.log.info("%d of %d answers correct", correct, len(rows))
    return {"answers_file": str(path), "graded": rows,
            "summary": {"total": len(rows), "correct": correct, "wrong": len(rows) - correct}}


if __name__ == "__main__":
    launch("check_answers")
