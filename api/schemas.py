"""Request and response models (KServe V1 style), with examples for the OpenAPI page."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Parameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_evals: int | None = Field(None, ge=1, description="Evaluation budget (sampled methods).")
    seed: int | None = Field(None, description="Seed of sampled methods.")
    top_k: int | None = Field(None, ge=1, description="Keep the k features with largest |value|.")


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


class Explanation(BaseModel):
    id: str | None = Field(
        None,
        description="Id in the explanation store (GET /v1/explanations/{id}); absent "
        "when EAAS_STORE=off. All ids of a response are also in the X-Explanation-Ids header.",
    )
    output_names: list[str]
    prediction: list[float]
    base_values: list[float]
    values: list[list[float]] = Field(description="values[o][f]: attribution of f to output o")
    features: list[str]
    data: list[float | None] | list[str]
    additivity_error: float = Field(description="max_o |base + sum(values[o]) - prediction[o]|")
    truncated: bool | None = Field(None, description="Set when top_k dropped features.")
    rest: list[float] | None = Field(None, description="Per output, the sum of dropped values.")


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
    explanations: list[Explanation]


class ServedModel(BaseModel):
    name: str
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
