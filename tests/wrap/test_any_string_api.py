"""Any JSON string, lone UTF-16 surrogates included, as the text of a message the API stores
(POST /v1/campaigns, /v1/wrap, /v1/wrap/batch): a message with a lone surrogate is a 422
naming the field, never a 500, and nothing is written; any other string is no server error.
On SQLite and PostgreSQL (neither can store a lone surrogate)."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_wrap_api import SPEC, counts

from inprocess_api import Api, problem

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=80) | st.sampled_from(
    ["Hi \ud83d", "\udc00 https://x.example.com/a"]
)
LONE = re.compile("[\ud800-\udfff]")


def _json(body: object) -> dict[str, object]:
    # ASCII JSON: the surrogates travel as \ud83d escapes, as a client's JSON encoder writes them
    return {"content": json.dumps(body), "headers": {"Content-Type": "application/json"}}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=ANY_TEXT)
def test_message_text_from_any_json_string(api: Api, text: str) -> None:
    before = counts(api)
    template = text + " https://shop.example.com/a"
    created, wrapped, batch = api.calls(
        [
            ("POST", "/v1/campaigns", _json({"name": "Fuzz", "template": template})),
            ("POST", "/v1/wrap", _json({"campaign": SPEC, "to": "+14155550100", "text": text})),
            (
                "POST",
                "/v1/wrap/batch",
                _json({"campaign": SPEC, "items": [{"to": "+14155550101", "text": text}]}),
            ),
        ]
    )
    for r in (created, wrapped, batch):
        assert r.status_code < 500, r.text
    if LONE.search(text):
        assert "lone UTF-16 surrogate" in problem(created, 422, "/template")["errors"][0]["message"]
        problem(wrapped, 422, "/text")
        assert batch.status_code == 422, batch.text
        assert counts(api) == before
