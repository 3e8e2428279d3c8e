"""The batch job's command line, declared once: `eaas batch`, `python -m eaas.batch.command`
and spark-submit (`batch/job.py` as the application file) all parse these options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlflow.exceptions import MlflowException

from eaas.batch.job import FORMATS, JobSpec, parse_conf, run_job, split_cols
from eaas.explain.errors import EaasError, one_line
from eaas.explain.schema import LONG_TEXT
from eaas.explain.settings import DEFAULT_MAX_TEXT_CHARS

DESCRIPTION = (
    "Explain every row of a dataset on Spark; writes typed Parquet with status/error per row."
)


def parser(prog: str = "eaas batch") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    p.add_argument("--model", required=True,
                   help="NAME, NAME@ALIAS or NAME/VERSION (model or explainer)")
    p.add_argument("--input", required=True, help="Parquet or CSV file or folder")
    p.add_argument("--output", required=True, help="Parquet folder (replaced on success)")
    p.add_argument("--id-cols", help="Comma-separated columns to keep (default: all)")
    p.add_argument("--master", help="Spark master URL (default: local[*])")
    p.add_argument("--format", choices=FORMATS, help="default: from the extension")
    p.add_argument("--max-evals", type=int, help="Evaluation budget of sampled methods")
    p.add_argument("--seed", type=int, help="Seed of sampled methods")
    p.add_argument("--tolerance", type=float,
                   help="Sampled methods: target error relative to |prediction - base value| "
                   "(0 spends max-evals; default: the explainer's)")
    p.add_argument("--partitions", type=int, help="Spark partitions (default: one per core)")
    p.add_argument("--max-text-chars", type=int, default=DEFAULT_MAX_TEXT_CHARS,
                   help=f"Longer texts become error rows (default: {DEFAULT_MAX_TEXT_CHARS})")
    p.add_argument("--conf", action="append", metavar="KEY=VALUE",
                   help="Extra Spark setting (repeatable)")
    p.add_argument("--long-text", choices=LONG_TEXT,
                   help="Text models: truncate or window (default: the explainer's)")
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m eaas.batch.command") -> int:
    """Run the job; exit 0, 2 on an error the user can fix, 1 when Spark itself failed."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    a = parser(prog).parse_args(argv)
    try:
        job = JobSpec(
            a.model, a.input, a.output, split_cols(a.id_cols), a.master, a.format,
            a.max_evals, a.seed, a.partitions, a.max_text_chars, parse_conf(a.conf),
            a.long_text, tolerance=a.tolerance,
        )  # fmt: skip
        result = run_job(job, echo=lambda s: print(s, file=sys.stderr, flush=True))
    except (EaasError, MlflowException, FileNotFoundError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    except (PySparkException, Py4JError) as exc:  # a cluster/Spark failure, not a row's
        print(f"error: the Spark job failed: {one_line(exc)} (Spark's log above has details)",
              file=sys.stderr)
        return 1
    print(result.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
