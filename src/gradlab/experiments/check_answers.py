"""Grade a student's numeric answers to Homework 1 against the values the library computes.

    python experiments/check_answers.py answers=configs/examples/answers.yaml
    python experiments/check_answers.py answers=my_answers.yaml rtol=1e-3

The answers schema is documented in src/gradlab/answers.py. A wrong answer is shown with the computed value
and the error beside it; a malformed file stops with one line naming the entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from gradlab.verify import answers
from gradlab.runner.config import ConfigError, at_least, checked
from gradlab.runner.run import BaseConfig, RunContext, launch


@dataclass
class Config(BaseConfig):
    answers: str = checked("configs/examples/answers.yaml", lambda p: bool(p), "a path to a YAML answers file")
    rtol: float = at_least(0.0, 1e-6)
    atol: float = at_least(0.0, 1e-6)


def main(cfg: Config, ctx: RunContext) -> dict:
    path = Path(cfg.answers)
    if not path.is_file():
        raise ConfigError("answers", cfg.answers, "an existing YAML answers file (file not found)")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError("answers", cfg.answers, f"valid YAML ({str(err).splitlines()[0]})") from None
    rows = answers.grade(answers.parse(document, path.name), cfg.rtol, cfg.atol)
    for row in rows:
        where = f"{row['section']}[{row['index']}].{row['quantity']}"
        if row["correct"]:
            ctx.log.info("correct  %s", where)
        else:
            ctx.log.info("WRONG    %s: answer %s, computed %s, max abs error %s", where, row["answer"],
                         row["computed"], row["max_abs_error"])
    correct = sum(row["correct"] for row in rows)
    ctx.log.info("%d of %d answers correct", correct, len(rows))
    return {"answers_file": str(path), "graded": rows,
            "summary": {"total": len(rows), "correct": correct, "wrong": len(rows) - correct}}


if __name__ == "__main__":
    launch("check_answers")
