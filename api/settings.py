"""Service settings: the core settings extended (same `EAAS_` prefix); CLI flags override."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from eaas.explain.settings import DEFAULT_MAX_TEXT_CHARS, CoreSettings

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ServeSettings(CoreSettings):
    host: str = Field(default="127.0.0.1", description="Bind address; off-loopback needs API keys.")
    port: int = Field(default=8000, description="Bind port.")
    models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Models to serve: NAME, NAME@alias or NAME/version, comma-separated. "
        "Empty: every registered explainer, under its source model's name.",
    )
    workers: int = Field(default=1, ge=1, description="uvicorn worker processes.")
    executor_threads: int = Field(
        default=2, ge=1, description="Explanation threads per process (numeric libs pinned)."
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys; when set, /v1/* and /ui need "
        "'Authorization: Bearer <key>'.",
    )
    max_body_bytes: int = Field(default=1 << 20, description="Largest request body (413 above).")
    max_instances: int = Field(default=256, description="Most instances per request (413 above).")
    max_text_chars: int = Field(
        default=DEFAULT_MAX_TEXT_CHARS, description="Longest text instance (413 above)."
    )
    max_evals_limit: int = Field(default=20000, description="Largest max_evals a request may ask.")
    max_request_cost: int = Field(
        default=2_000_000,
        ge=0,
        description="Largest estimated cost of a text request, words x evaluations summed over "
        "its texts (413 above, before any work starts; 0: no limit). About 60 s of MiniLM work "
        "on one core: more could never finish in the default time budget.",
    )
    timeout_s: float = Field(default=30.0, description="Time budget of a request (504 above).")
    cache_size: int = Field(
        default=4096, description="LRU entries of explained instances (0: off)."
    )
    batch_window_ms: float = Field(
        default=0.0,
        description="Extra wait of an idle explainer for company. Requests arriving while its "
        "batch runs are coalesced anyway, so 0 adds no latency and still batches under load.",
    )
    max_batch: int = Field(default=64, description="Most instances in one batched explain call.")
    max_queue: int = Field(default=1024, description="Most instances waiting (503 above).")
    refresh_s: float = Field(
        default=30.0, description="How often aliases are re-read from the registry."
    )
    # explanation store (audit trail): docs/audit.md
    store: bool = Field(
        default=True, description="Keep every returned explanation (on/off); docs/audit.md."
    )
    store_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the explanation store "
        "[default: sqlite:///EAAS_HOME/explanations.db]; e.g. postgresql+psycopg://...",
    )
    store_inputs: bool = Field(
        default=True, description="Store the inputs; false: only their SHA-256 (personal data)."
    )
    store_retention_days: int = Field(
        default=90, ge=0, description="Stored explanations older than this are deleted (0: keep)."
    )
    store_queue: int = Field(
        default=10000, ge=1, description="Explanations queued for the store writer (dropped above)."
    )
    # --- hardening: memory bound, faults, shutdown (issue 9) ---
    max_loaded_explainers: int = Field(
        default=8,
        ge=1,
        description="Most explainers held in memory (LRU); the versions that served names and "
        "aliases point to stay loaded even above it.",
    )
    max_batchers: int = Field(
        default=256, ge=1, description="Most idle micro-batchers kept (one per explainer and "
        "parameter set; LRU)."
    )
    registry_retry_s: float = Field(
        default=5.0, gt=0, description="While the registry does not answer at start, retry "
        "this often (/readyz says why meanwhile)."
    )
    inline_exact_rows: int = Field(
        default=4, ge=0, description="Requests of at most this many rows for an exact method "
        "(tree, linear) run on the event loop when nothing is queued, skipping two thread hops "
        "(about a millisecond of work). 0: always use the pool."
    )
    grace_s: float = Field(
        default=20.0, ge=0, description="On SIGTERM: stop accepting, let requests in flight "
        "finish for at most this many seconds, then exit."
    )

    # --- explanation jobs (issue 17): docs/api.md, docs/operations.md ---
    job_max_instances: int = Field(
        default=10_000, ge=1, description="Most instances in one job (413 above)."
    )
    job_max_body_bytes: int = Field(
        default=64 << 20, ge=1, description="Largest job submission body (413 above)."
    )
    job_timeout_s: float = Field(
        default=6 * 3600.0, gt=0, description="Time budget of a job from its first start: "
        "instances not explained by then end with an error and the job fails."
    )
    job_max_instance_cost: int = Field(
        default=20_000_000, ge=0, description="Largest estimated cost of one text instance of "
        "a job, words x evaluations (about 10 min of MiniLM work on one core; 413 or an error "
        "row above; 0: no limit)."
    )
    job_threads: int = Field(
        default=1, ge=0, description="Jobs this process runs at once, each on one executor "
        "thread (below EAAS_EXECUTOR_THREADS, so requests keep the rest; with one executor "
        "thread, jobs and requests alternate by chunk). 0: this process accepts jobs and leaves "
        "running them to others."
    )
    job_lease_s: float = Field(
        default=30.0, gt=0, description="A chunk of a job whose process stops renewing it for "
        "this long (killed, cut off) is taken over by another process or the next start."
    )
    job_poll_s: float = Field(
        default=1.0, gt=0, description="How often a process renews its chunks' leases, sees "
        "cancellations made elsewhere and looks for jobs with work free."
    )

    # --- Ray Serve (issue 18): `eaas serve --ray`, docs/operations.md ---
    ray_address: str | None = Field(
        default=None, description="Ray cluster to deploy on (ray://, host:port or auto); "
        "none: a local Ray is started."
    )
    ray_replicas: int = Field(default=1, ge=1, description="Replicas of the app on Ray.")
    ray_autoscale: str | None = Field(
        default=None, description="MIN:MAX replicas, autoscaled on ongoing requests per replica "
        "(instead of a fixed EAAS_RAY_REPLICAS)."
    )
    ray_target_ongoing: float = Field(
        default=2.0, gt=0, description="Autoscaling target: ongoing requests per replica."
    )
    ray_replica_cpus: float = Field(default=1.0, gt=0, description="CPUs a replica reserves.")
    ray_fanout: int = Field(
        default=0, ge=0, description="Ray: batch workers per explainer that a heavy text "
        "explanation's forward batches are spread over (same numbers; 0: none)."
    )
    ray_replica_resources: dict[str, float] = Field(
        default_factory=dict, description='Custom Ray resources a replica needs, as JSON, e.g. '
        '{"explain": 1} (places replicas on the nodes that offer them).'
    )

    @field_validator("models", "api_keys", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @field_validator("ray_autoscale")
    @classmethod
    def _autoscale(cls, v: str | None) -> str | None:
        if v is not None:
            parse_autoscale(v)  # checked before anything connects to a cluster
        return v

    @model_validator(mode="after")
    def _requests_keep_a_thread(self) -> ServeSettings:
        # with one executor thread, a job and requests alternate chunk by chunk
        most = max(1, self.executor_threads - 1)
        if self.job_threads > most:
            raise ValueError(
                f"EAAS_JOB_THREADS ({self.job_threads}) must be below EAAS_EXECUTOR_THREADS "
                f"({self.executor_threads}): synchronous requests keep at least one thread"
            )
        return self

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK or self.host.startswith("127.")


def parse_autoscale(text: str) -> tuple[int, int]:
    """`MIN:MAX` replicas, 0 <= MIN <= MAX, MAX >= 1."""
    low, sep, high = text.partition(":")
    ok = sep and low.isdigit() and high.isdigit() and 0 <= int(low) <= int(high) and int(high) >= 1
    if not ok:
        raise ValueError("expected MIN:MAX replicas with MIN <= MAX, e.g. 1:4")
    return int(low), int(high)
