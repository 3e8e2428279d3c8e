"""Run inside the kserve venv (not eaas's): drive a running eaas service with KServe's own
InferenceRESTClient (protocol v1) and print what it got as JSON."""

import asyncio
import json
import sys

import httpx
from kserve import InferenceRESTClient, RESTConfig


async def main(base: str, name: str, instance: str) -> dict:
    out: dict = {}
    client = InferenceRESTClient(RESTConfig(protocol="v1", retries=0, timeout=60))
    try:
        out["live"] = await client.is_server_live(base)
        out["ready"] = await client.is_model_ready(base, name)
        try:
            await client.is_model_ready(base, "no-such-model")
        except httpx.HTTPStatusError as exc:
            out["unknown_status"] = exc.response.status_code
        out["explain"] = await client.explain(base, name, {"instances": [json.loads(instance)]})
    finally:
        await client.close()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
