"""The whole loop through real processes: CSV → campaign → outbox → receipts → clicks → report.

Runs on SQLite and PostgreSQL. Every number of the report is checked against what the test did.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from conftest import CLI, Env

pytestmark = pytest.mark.e2e

N = 1000
UA_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


def write_recipients(path: Path) -> list[str]:
    """Write N recipients (some national numbers, some +E.164); return their E.164 phones."""
    phones = []
    lines = ["phone,external_id,first_name,tier"]
    for i in range(N):
        # 1 202 555 01xx is reserved for fiction; spread over several area codes for 1000.
        area = ["202", "212", "312", "415", "617", "713", "206", "303", "404", "503"][i // 100]
        local = f"555{100 + i % 100:04d}"
        e164 = f"+1{area}{local}"
        phones.append(e164)
        written = e164 if i % 3 else f"({area}) {local[:3]}-{local[3:]}"  # national format
        lines.append(f"{written},cust-{i:04d},Name{i},{'gold' if i % 7 == 0 else 'std'}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return phones


def test_campaign_loop_end_to_end(env: Env, server_factory: type, tmp_path: Path) -> None:
    csv_path = tmp_path / "recipients.csv"
    phones = write_recipients(csv_path)

    env.cli("workspace", "create", "Acme Retail")
    env.cli("domain", "add", "sms.example.com")
    imported = env.cli("contacts", "import", str(csv_path), "--region", "US")
    assert f"imported {N} contacts" in imported.stdout
    env.cli(
        "campaign", "create", "Black Friday",
        "--template",
        "Hi {first_name}, {tier} deals: https://shop.example.com/bf?src=sms (ends Sunday). "
        "Stop: https://shop.example.com/optout",
        "--link-role", "2=optout",
    )  # fmt: skip
    sent = env.cli("campaign", "send", "black-friday", "--json")
    assert json.loads(sent.stdout)["sent"] == N
    key = env.cli("keys", "create").stdout.strip()

    outbox = [json.loads(line) for line in (env.data_dir / "outbox.jsonl").read_text().splitlines()]
    assert len(outbox) == N
    assert sorted(m["to"] for m in outbox) == sorted(phones)
    for m in outbox:
        assert m["encoding"] == "GSM-7" and m["segments"] == 1
    # Both links wrapped, all other text byte-for-byte.
    links = []
    for m in outbox:
        body = m["body"]
        assert body.startswith("Hi Name") and " deals: https://sms.example.com/c/" in body
        assert " (ends Sunday). Stop: https://sms.example.com/c/" in body
        first = body.split("deals: ")[1].split(" ")[0]
        second = body.rsplit("Stop: ", 1)[1]
        links.append((first.rsplit("/", 1)[1], second.rsplit("/", 1)[1]))
    assert len({t for pair in links for t in pair}) == 2 * N  # unique per recipient and link

    # Clicks are written only when the server stops: this also proves SIGTERM drains them.
    # Each recipient taps from their own phone: the test stands in for a trusted proxy and
    # names the client address in X-Forwarded-For.
    server = server_factory(
        env,
        settings={
            "CLICKTRAIL_CLICK_FLUSH_INTERVAL": "3600",
            "CLICKTRAIL_TRUSTED_PROXIES": "127.0.0.1",
        },
    )
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base, timeout=10) as http:
        # Receipts: 850 delivered, 50 failed, 50 without any receipt.
        ids = [m["message_id"] for m in outbox]
        receipts = [
            {"message_id": mid, "status": "delivered", "at": "2026-11-22T10:00:00Z"}
            for mid in ids[:850]
        ] + [
            {"message_id": mid, "status": "failed", "at": "2026-11-22T10:00:00Z"}
            for mid in ids[850:900]
        ]
        r = http.post("/v1/messages/status", json=receipts[:500], headers=auth)
        assert r.status_code == 200, r.text
        r = http.post("/v1/messages/status", json=receipts[500:], headers=auth)
        assert r.json() == {"applied": 400, "unchanged": 0, "unknown": []}
        # Late and repeated receipts never move a message back.
        late = [
            {"message_id": mid, "status": "sent", "at": "2026-11-22T09:59:00Z"} for mid in ids[:10]
        ]
        late += [
            {"message_id": ids[0], "status": "delivered"},
            {"message_id": ids[850], "status": "delivered"},
        ]
        r = http.post("/v1/messages/status", json=late, headers=auth)
        assert r.json() == {"applied": 0, "unchanged": 12, "unknown": []}
        # An unknown message id is reported and nothing of the batch is applied.
        r = http.post(
            "/v1/messages/status",
            json=[
                {"message_id": ids[900], "status": "delivered"},
                {"message_id": "msg_nope", "status": "delivered"},
            ],
            headers=auth,
        )
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["errors"][0]["field"] == "/1/message_id"

        # What Safari on an iPhone sends when a person taps the link (bot rules check this).
        host = {
            "Host": "sms.example.com",
            "User-Agent": UA_IPHONE,
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "Accept-Language": "en-US,en;q=0.9",
            "Accept-Encoding": "gzip, deflate, br",
            "Sec-Fetch-Site": "none",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "document",
        }

        click_ids: list[str] = []
        tokens_of_recipient = {tok: i for i, pair in enumerate(links) for tok in pair}
        utm = "utm_source=sms&utm_medium=sms&utm_campaign=black-friday"

        def get(token: str, method: str = "GET") -> httpx.Response:
            i = tokens_of_recipient[token]
            phone_ip = {"X-Forwarded-For": f"172.{56 + i // 250}.{i % 250}.7"}  # own /24 each
            resp = http.request(method, f"/c/{token}", headers={**host, **phone_ip})
            assert resp.status_code == 302, (token, resp.status_code)
            head, _, cid = resp.headers["location"].rpartition("&ct_cid=")
            assert cid
            click_ids.append(cid)
            resp.headers["location"] = head  # what is left must be the tagged destination
            return resp

        for i in range(100):  # link 1, once; 0-29 twice
            location = get(links[i][0]).headers["location"]
            assert location == f"https://shop.example.com/bf?src=sms&{utm}"
        for i in range(30):
            get(links[i][0])
        for i in range(100, 150):  # both links
            get(links[i][0])
            assert get(links[i][1]).headers["location"] == f"https://shop.example.com/optout?{utm}"
        for i in range(150, 170):  # HEAD only: recorded, never a click
            assert (
                get(links[i][0], "HEAD").headers["location"]
                == f"https://shop.example.com/bf?src=sms&{utm}"
            )
        for i in range(170, 180):  # link 2 only
            get(links[i][1])
        for i in range(950, 955):  # no receipt yet, but they clicked
            get(links[i][0])

        # Not links: unknown token, malformed token, another host.
        assert http.get("/c/AAAAAAAAA", headers=host).status_code == 404
        assert http.get("/c/short", headers=host).status_code == 404
        wrong_host = http.get(f"/c/{links[0][0]}", headers={"Host": "other.example.com"})
        assert wrong_host.status_code == 404 and "Link not found" in wrong_host.text

    server.stop()

    # Every redirect carried its own click id, and that id is the stored click's.
    assert len(click_ids) == len(set(click_ids)) == 265
    engine = sa.create_engine(env.database_url)
    with engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT click_id FROM clicks")).scalars())
    engine.dispose()
    assert stored == set(click_ids)

    report = json.loads(env.cli("report", "black-friday", "--json").stdout)
    assert report["messages"] == N
    assert report["sent"] == N
    assert report["delivered"] == 850
    assert report["failed"] == 50
    assert report["undelivered"] == 0
    assert report["queued"] == 0
    link1_total = 100 + 30 + 50 + 5
    link2_total = 50 + 10
    # The headline leaves the opt-out link out; `all_links` has every link.
    every = report["all_links"]
    assert report["total_clicks"] == link1_total == 185
    assert every["total_clicks"] == link1_total + link2_total == 245
    unique = 100 + 50 + 10 + 5
    assert every["unique_clicks"] == unique == 165
    assert report["unique_clicks"] == 155
    assert report["requests"] == 245 + 20
    assert report["ctr"] == pytest.approx(155 / 850)
    assert every["ctr"] == pytest.approx(unique / 850)
    assert report["repeat_click_rate"] == pytest.approx(185 / 155)
    assert every["repeat_click_rate"] == pytest.approx(245 / 165)
    l1, l2 = report["links"]
    assert (l1["role"], l1["total_clicks"], l1["unique_clicks"], l1["requests"]) == (
        "cta",
        185,
        155,
        205,
    )
    assert (l2["role"], l2["total_clicks"], l2["unique_clicks"], l2["requests"]) == (
        "optout",
        60,
        60,
        60,
    )
    assert l1["ctr"] == pytest.approx(155 / 850)

    # Provisional verdicts: every request above looked like a person's tap.
    assert (every["raw_total_clicks"], report["raw_total_clicks"]) == (245, 185)
    assert (every["raw_unique_clicks"], report["raw_unique_clicks"]) == (165, 155)
    assert report["by_verdict"] == {"human": 245, "probe": 20}
    assert report["preview_fetches"] == 0

    # Once settled, the behavioural rules run: recipients 100-149 hit both links within
    # milliseconds, which no person does. Re-classification applies them to history now.
    settled = dict(env.vars, CLICKTRAIL_BOT_SETTLE_SECONDS="0")
    done = subprocess.run(
        [*CLI, "bots", "reclassify", "--json"], env=settled, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(done.stdout)["requests"] == 265
    after = json.loads(env.cli("report", "black-friday", "--json").stdout)
    assert after["all_links"]["raw_total_clicks"] == 245  # raw counts never change
    assert after["by_reason"].get("ALL_LINKS_2S", 0) >= 100
    assert (after["all_links"]["unique_clicks"], after["unique_clicks"]) == (165 - 50, 155 - 50)
    assert (after["all_links"]["total_clicks"], after["total_clicks"]) == (245 - 100, 185 - 50)
    assert after["provisional"]["final"]  # settle window 0: every verdict is final
