"""Core settings: one pydantic-settings class, read from `EAAS_*` environment variables.

Adapters (the REST service) extend this class rather than defining a second one. There is no
process-wide cached instance: an entry point (a command, the server, a Spark worker, the pyfunc
at load time) reads the environment once and passes its settings object down; library functions
take `settings=None` to mean "read the environment now".
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MAX_TEXT_CHARS = 5000  # the longest text instance the service and batch jobs take


class CoreSettings(BaseSettings):
    """Settings shared by every entry point."""

    model_config = SettingsConfigDict(env_prefix="EAAS_", extra="ignore")

    home: Path = Field(
        default=Path("~/.eaas"),
        description="Home folder of the embedded MLflow (SQLite store + artifacts), used when "
        "MLFLOW_TRACKING_URI is not set; also the default place for reports and demo data.",
    )
    num_threads: int = Field(
        default=1,
        ge=1,
        description="Numeric threads per worker (torch, OpenMP, xgboost). On 2 busy cores two "
        "threads per worker ran up to 15x slower than one, so the default is 1.",
    )
    trust_registry: bool = Field(
        default=True,
        description="Treat models in the configured registry as trusted code: sklearn/skops "
        "models need deserialization to load. Requests can never name a model outside it.",
    )
    default_max_evals: int = Field(
        default=500, ge=1, description="Default evaluation budget of sampled methods."
    )
    default_seed: int = Field(default=0, description="Default seed of sampled methods.")
    default_tolerance: float = Field(
        default=0.05, ge=0, le=1,
        description="Default tolerance of sampled methods: evaluations stop once every "
        "output's standard-error norm is within this fraction of |prediction - base value| "
        "(max_evals stays the cap); 0 spends the whole budget.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="Where text models and integrated gradients run: auto (CUDA when "
        "available, else CPU), cpu, or cuda (an error when no CUDA device is available).",
    )

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()
