"""Property-based fuzzing (hypothesis) of `:explain` over real HTTP: random JSON bodies, random
parameter values and random model names, for a tabular and a text model. Whatever is sent, the
answer is never a 5xx other than 503 (busy or not ready), is always the error shape or an
explanation, and the service is healthy after."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FEATURES = ["f0", "f1", "f2", "f3", "f4"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                          inner, max_size=4),
    max_leaves=12,
)
numbers = st.one_of(st.floats(allow_nan=False, width=64), st.integers(-10**40, 10**40))
rows = st.fixed_dictionaries({f: numbers for f in FEATURES}) | st.dictionaries(
    st.sampled_from(FEATURES + ["x", ""]), json_values, max_size=6
)
params = st.dictionaries(
    st.sampled_from(["max_evals", "seed", "top_k", "long_text", "other"]),
    st.one_of(st.integers(-2**70, 2**70), json_values, st.sampled_from(["truncate", "window"])),
    max_size=3,
)
names = st.one_of(
    st.sampled_from(["tiny-xgb", "tiny-bert", "tiny-xgb@champion", "tiny-xgb/1", "tiny-bert/9"]),
    st.text(st.characters(codec="ascii", exclude_characters="?#/"), min_size=1, max_size=40),
)
bodies = st.one_of(
    st.fixed_dictionaries({"instances": st.lists(rows, min_size=1, max_size=3),
                           "parameters": params}),
    st.fixed_dictionaries({"instances": st.lists(st.text(max_size=60) | json_values,
                                                 min_size=1, max_size=3),
                           "parameters": params}),
    json_values,
)

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _check(res) -> None:
    assert res.status_code < 500 or res.status_code == 503, res.text
    body = res.json()
    assert ("error" in body and set(body["error"]) == {"code", "message"}) or (
        "explanations" in body
    )


@FUZZ
@given(name=names, body=bodies)
def test_random_requests_never_5xx(api, name, body):
    raw = json.dumps(body, allow_nan=True).encode()  # NaN/Infinity as Python's json writes them
    from urllib.parse import quote

    _check(api.post(f"/v1/models/{quote(name, safe='@')}:explain", content=raw))


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_never_5xx(api, data):
    _check(api.post("/v1/models/tiny-bert:explain", content=data))


def test_healthy_after_fuzzing(api):
    assert api.get("/readyz").status_code == 200
    res = api.post("/v1/models/tiny-xgb:explain",
                   json={"instances": [{f: 0.1 for f in FEATURES}]})
    assert res.status_code == 200
