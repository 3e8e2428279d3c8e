"""Request and response models (KServe V1 style), with examples for the OpenAPI page."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from eaas.explain.schema import FIELDS


class Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_evals: int | None = Field(
        default=None, ge=1, description="Evaluation budget (sampled methods)."
    )
    seed: int | None = Field(default=None, description="Seed of sampled methods.")
    long_text: str | None = Field(
        default=None, description="Text models: 'truncate' (what the model sees) or 'window'."
    )
    tolerance: float | None = Field(
        default=None, ge=0, le=1,
        description="Sampled methods: stop once every output's standard-error norm is within "
        "this fraction of |prediction - base value| (max_evals stays the cap; 0: spend it).",
    )
    top_k: int | None = Field(
        default=None, ge=1, description="Keep the k features with largest |value|."
    )


class ExplainRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "instances": [{"mean radius": 17.99, "mean texture": 10.38, "...": 0.1189}],
                    "parameters": {"top_k": 5},
                },
                {
                    "instances": ["A gripping, beautifully acted film."],
                    "parameters": {"max_evals": 200, "seed": 0},
                },
            ]
        },
    )

    # checked per model kind by the route, which names the instance and feature at fault
    instances: list[Any] = Field(
        ..., description="Feature->number objects (tabular; null = missing) or strings (text)."
    )
    parameters: Parameters = Field(default_factory=Parameters)


_PY_TYPES: dict[str, Any] = {
    "strings": list[str],
    "doubles": list[float],
    "matrix": list[list[float]],
    "errors": list[list[float]] | None,
    # numbers (null = missing), words, or a mixed-type row's values as the model received them;
    # bool before int before float before str: pydantic's smart union keeps each value's own
    # type (no string made a number, no boolean an integer)
    "data": list[bool | int | float | str | None],
    "double": float,
    "bool": bool,
}

# made from the core's one field table (explain/schema.py), plus what top_k adds
_EXPLANATION_FIELDS: dict[str, Any] = {
    "id": (
        str | None,
        Field(
            None,
            description="Id in the explanation store (GET /v1/explanations/{id}); absent "
            "when EAAS_STORE=off. All ids of a response are also in the X-Explanation-Ids header.",
        ),
    ),
    **{f.name: (_PY_TYPES[f.type], Field(description=f.description)) for f in FIELDS},
    "dropped": (
        int | None,
        Field(None, description="With top_k: how many features were dropped."),
    ),
    "rest": (
        list[float] | None,
        Field(None, description="With top_k: per output, the sum of the dropped values."),
    ),
}
Explanation = create_model("Explanation", **_EXPLANATION_FIELDS)


class ModelInfo(BaseModel):
    name: str
    version: str


class ExplainerInfo(BaseModel):
    name: str
    version: str
    method: str
    params: dict[str, Any]


class ExplainResponse(BaseModel):
    model: ModelInfo
    explainer: ExplainerInfo
    predictions: list[list[float]]
    explanations: list[Explanation]  # type: ignore[valid-type]


class ServedModel(BaseModel):
    name: str
    ready: bool = Field(True, description="KServe V1: the model can explain now.")
    versions: list[str]
    aliases: dict[str, str]
    method: str
    kind: str
    inputs: list[str]


class ServedModelDetail(ServedModel):
    version: str
    explainer: ExplainerInfo
    output_names: list[str]
    output_space: str


class ModelList(BaseModel):
    models: list[ServedModel]


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


# the statuses every /v1 route may answer with the error shape (OpenAPI)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorResponse} for s in (400, 401, 404, 413, 422, 503, 504)
}
