"""An automation through real processes (`clicktrail serve` and the CLI), on SQLite and
PostgreSQL: a person's click on a campaign link makes the jobs process send the rule's
follow-up through the campaign's provider (the outbox), once; the API and the CLI show the run
fired with its message."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from conftest import Env

pytestmark = pytest.mark.e2e

UA_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


def _outbox(env: Env) -> list[dict[str, str]]:
    path = env.data_dir / "outbox.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_click_fires_the_follow_up_through_the_server(
    env: Env, server_factory: type, tmp_path: Path
) -> None:
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_text("phone,first_name\n+14155550100,Ada\n+14155550101,Bob\n")
    env.cli("workspace", "create", "Acme Retail")
    env.cli("domain", "add", "sms.example.com")
    env.cli("contacts", "import", str(csv_path))
    env.cli(
        "campaign",
        "create",
        "Spring Sale",
        "--template",
        "Hi {first_name}: https://shop.example.com/sale",
    )
    env.cli("campaign", "send", "spring-sale")
    key = env.cli("keys", "create").stdout.strip()
    rule = json.loads(env.cli(
        "automations", "add", "Thanks", "--trigger", "clicked", "--campaign", "spring-sale",
        "--send", "Thanks {first_name}: https://shop.example.com/thanks", "--json",
    ).stdout)  # fmt: skip
    sent = _outbox(env)
    ada = next(m for m in sent if m["to"] == "+14155550100")
    token = ada["body"].rsplit("/", 1)[1]
    time.sleep(2.5)  # a tap within 2 s of the send would be a link preview's
    server = server_factory(env)
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base, timeout=10) as http:
        r = http.get(
            f"/c/{token}",
            headers={"Host": "sms.example.com", "user-agent": UA_IPHONE, "accept-language": "en"},
        )
        assert r.status_code == 302
        deadline = time.monotonic() + 60
        follow = []
        while not follow and time.monotonic() < deadline:
            time.sleep(0.2)
            follow = [m for m in _outbox(env) if m["body"].startswith("Thanks")]
        assert [m["to"] for m in follow] == ["+14155550100"], _outbox(env)
        assert follow[0]["body"].startswith("Thanks Ada: http")
        assert "shop.example.com/thanks" not in follow[0]["body"]  # its own tracked link
        runs = http.get(f"/v1/automations/{rule['id']}/runs", headers=auth).json()["items"]
        time.sleep(1.0)  # a few more passes: nothing more is sent
        assert len([m for m in _outbox(env) if m["body"].startswith("Thanks")]) == 1
    server.stop()
    assert [(x["phone"], x["state"], x["message"]) for x in runs] == [
        ("+14155550100", "fired", follow[0]["message_id"])
    ]
    shown = json.loads(env.cli("automations", "runs", rule["id"], "--json").stdout)
    assert [x["state"] for x in shown] == ["fired"]
