"""The same FastAPI app as `eaas serve`, deployed as a Ray Serve application (`eaas serve --ray`).

The ingress deployment builds the app on each replica (`create_app` from the settings in the
replica's environment), so a replica loads its explainers from the registry itself, runs the
app's lifespan (repository, executor, store writer, job runner) and answers the same routes with
the same keys and numbers. The settings travel to the replicas as `EAAS_*` / `MLFLOW_*`
environment variables of the application's runtime environment. Ray is an optional extra
(`pip install 'eaas[ray]'`): nothing imports this module unless `--ray` is asked for.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from typing import Any

from eaas.api.server import check_exposure
from eaas.api.settings import ServeSettings, parse_autoscale

log = logging.getLogger("eaas.api")
APP_NAME = "eaas"
ENV_PREFIXES = ("EAAS_", "MLFLOW_", "HF_", "OMP_", "MKL_", "OPENBLAS_")


def _build() -> Any:
    """Run on each replica when it starts: the app, from the replica's environment; with
    EAAS_RAY_FANOUT workers, each explainer's evaluation batches spread over them; its
    /metrics summed over all replicas (the driver's metrics hub)."""
    from eaas.api.app import create_app
    from eaas.api.ray_fanout import fanout_loader
    from eaas.api.ray_metrics import attach

    settings = ServeSettings()
    loader = None
    if settings.ray_fanout > 0:
        loader = fanout_loader(settings, settings.ray_fanout, settings.ray_replica_cpus)
    app = create_app(settings, loader)
    attach(app.state.metrics)
    return app


def replica_env(settings: ServeSettings) -> dict[str, str]:
    """What a replica's `ServeSettings()` must read: this process's settings variables, with
    the command line's overrides, and one numeric thread per executor thread by default."""
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
    env.update({"EAAS_MODELS": ",".join(settings.models), "EAAS_HOST": settings.host,
                "EAAS_NUM_THREADS": str(settings.num_threads)})  # fmt: skip
    return env


def deployment_options(settings: ServeSettings) -> dict[str, Any]:
    """Replicas (fixed or autoscaled on ongoing requests), and what each one reserves."""
    actor: dict[str, Any] = {"num_cpus": settings.ray_replica_cpus}
    if settings.ray_replica_resources:
        actor["resources"] = settings.ray_replica_resources
    opts: dict[str, Any] = {"name": APP_NAME, "ray_actor_options": actor,
                            "max_ongoing_requests": settings.max_queue}  # fmt: skip
    if settings.ray_autoscale:
        low, high = parse_autoscale(settings.ray_autoscale)
        opts["autoscaling_config"] = {
            "min_replicas": low, "max_replicas": high,
            "target_ongoing_requests": settings.ray_target_ongoing,
        }  # fmt: skip
    else:
        opts["num_replicas"] = settings.ray_replicas
    return opts


def deploy(settings: ServeSettings) -> None:
    """Connect to the cluster (`--address`; none: start a local one), start the metrics hub
    (it lives as long as this process), deploy, return."""
    import ray
    from ray import serve
    from ray.serve.config import HTTPOptions

    from eaas.api.ray_metrics import start_hub

    check_exposure(settings)
    ray.init(address=settings.ray_address or None, include_dashboard=False,
             runtime_env={"env_vars": replica_env(settings)},
             log_to_driver=False)  # fmt: skip
    start_hub()
    serve.start(http_options=HTTPOptions(host=settings.host, port=settings.port))
    ingress = serve.deployment(**deployment_options(settings))(serve.ingress(_build)())
    app = ingress.bind()
    serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)


def serve_on_ray(settings: ServeSettings) -> None:
    """`eaas serve --ray`: deploy, then hold until SIGINT/SIGTERM and take the app down."""
    from ray import serve

    deploy(settings)
    log.info("eaas on Ray Serve at http://%s:%d (%s)", settings.host, settings.port,
             json.dumps(deployment_options(settings)["ray_actor_options"]))  # fmt: skip
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    serve.delete(APP_NAME)
    serve.shutdown()
