"""A/B variants of a campaign (docs/experiments.md): the seeded draw honouring the shares
exactly, each message its variant's text and ``{variant}``, the report per variant against a
hand-built scenario (bots not counted), the checks naming the field; API and CLI. Storage on
SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from clicktrail.cli import app as cli_app
from clicktrail.domain.bandit import ArmState
from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Campaign, Receipt, Workspace
from clicktrail.domain.variants import Variant, VariantSpec, assign
from clicktrail.services import experiment_stats as stats
from clicktrail.services import variants
from clicktrail.services.ports import ClickRecord
from clicktrail.storage import tables as t
from factories import NOW_US, Repos, make_campaign, make_contacts, make_domain, make_workspace, send
from inprocess_api import HOST, Api, ok, problem, sign_in
from served import in_process

HUMAN = Verdict("human", 0, (), "t1")
SCANNER = Verdict("scanner", 95, ("NET_HOSTING",), "t1")
A = "Hi {first_name}, 10% off: https://shop.example/a?v={variant}"
B = "{first_name}: free shipping today https://shop.example/b?v={variant}"


def test_the_draw_honours_the_shares_exactly_and_is_reproducible() -> None:
    labels = assign(1000, [70, 30], 7)
    assert Counter(labels) == {0: 700, 1: 300}
    assert assign(1000, [70, 30], 7) == labels
    assert assign(1000, [70, 30], 8) != labels
    assert Counter(assign(7, [1, 1], 3)) == {0: 4, 1: 3}  # largest remainder, ties to the first
    assert Counter(assign(10, [1, 1, 1], 3)) == {0: 4, 1: 3, 2: 3}
    assert assign(0, [1, 1], 3) == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (VariantSpec((Variant("a", "x", 1),), 1), "variants"),
        (VariantSpec(tuple(Variant(f"v{i}", "x", 1) for i in range(11)), 1), "variants"),
        (VariantSpec((Variant("a", "x", 1), Variant("a", "y", 1)), 1), "variants/1/name"),
        (VariantSpec((Variant("a", "x", 1), Variant("B!", "y", 1)), 1), "variants/1/name"),
        (VariantSpec((Variant("a", "x", 0), Variant("b", "y", 1)), 1), "variants/0/share"),
        (VariantSpec((Variant("a", "x", 1), Variant("b", " ", 1)), 1), "variants/1/template"),
        (VariantSpec((Variant("a", "x", 1), Variant("b", "y", 1)), -1), "variant_seed"),
    ],
)
def test_bad_variants_name_the_field(spec: VariantSpec, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        spec.check()
    assert exc.value.field == field


def test_each_message_carries_its_variant(store: Repos, tmp_path: Path) -> None:
    """1,000 recipients at 70/30: 700 and 300 messages, each with its variant's text and
    ``{variant}`` in its destination; a second campaign with the same seed draws the same."""
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 1000, list_name="all")
    spec = [Variant("a", A, 70), Variant("b", B, 30)]
    cp = make_campaign(store, ws, "", list_name="all", variants=spec, variant_seed=42)
    assert cp.template == A and cp.options.variants is not None
    assert cp.options.variants.seed == 42
    summary = send(store, ws, cp, tmp_path / "outbox.jsonl")
    assert summary.created == 1000
    m, tk = t.messages, t.tokens
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.contact_id, m.c.variant, m.c.body, tk.c.destination)
            .join(tk, tk.c.message_id == m.c.id)
            .where(m.c.campaign_id == cp.id)
        ).all()
    assert Counter(r.variant for r in rows) == {"a": 700, "b": 300}
    for r in rows:
        assert ("10% off" in r.body) == (r.variant == "a")
        assert ("free shipping" in r.body) == (r.variant == "b")
        assert r.destination == f"https://shop.example/{r.variant}?v={r.variant}"
    first = {r.contact_id: r.variant for r in rows}
    # The same seed over the same audience: the same variant for every contact.
    again = make_campaign(store, ws, "", list_name="all", variants=spec, variant_seed=42)
    send(store, ws, again, tmp_path / "outbox2.jsonl")
    with store.engine.connect() as conn:
        second = dict(
            conn.execute(
                sa.select(m.c.contact_id, m.c.variant).where(m.c.campaign_id == again.id)
            ).all()
        )
    assert second == first
    # A campaign without variants stores none (nothing changes for it).
    plain = make_campaign(store, ws, "Hi https://shop.example/p", list_name="all")
    assert "variants" not in plain.options.as_dict()


def test_a_variant_link_destination_is_followed(api: Api, tmp_path: Path) -> None:
    """A click on a variant-b message goes to b's URL with {variant} filled."""
    make_contacts(Repos.on(api.container.engine), api.ws, 4, list_name="all")
    made = ok(api.call("POST", "/v1/campaigns", json={
        "name": "Split", "list": "all", "variant_seed": 5,
        "variants": [{"name": "a", "template": A}, {"name": "b", "template": B, "share": 1}],
    }), 201)  # fmt: skip
    cp = api.container.campaigns.find_campaign(api.ws.id, made["slug"])
    assert cp is not None
    send(Repos.on(api.container.engine), api.ws, cp, tmp_path / "outbox.jsonl")
    with api.container.engine.connect() as conn:
        token = conn.execute(
            sa.select(t.tokens.c.token)
            .join(t.messages, t.messages.c.id == t.tokens.c.message_id)
            .where(t.messages.c.campaign_id == cp.id, t.messages.c.variant == "b")
        ).scalar()
    r = api.call("GET", f"/c/{token}", key=None)
    assert r.status_code == 302
    url = urlsplit(r.headers["location"])
    assert url.path == "/b" and parse_qs(url.query)["v"] == ["b"]
    shown = ok(api.call("GET", f"/v1/campaigns/{made['slug']}/variants"))
    assert [(v["name"], v["share"], v["encoding"]) for v in shown["variants"]] == [
        ("a", 1, "GSM-7"), ("b", 1, "GSM-7"),
    ]  # fmt: skip
    assert shown["seed"] == 5


def _scenario(store: Repos, tmp_path: Path) -> tuple[Workspace, Campaign]:
    """6 recipients at 1/1 (3 and 3). Delivered: a 2, b 3. Clicks: an a recipient clicks twice
    (human), another a recipient only by a scanner (not counted), two b recipients (human),
    one of them also by a scanner; an undelivered a message clicked by a human (a clicker, not
    in the CTR)."""
    ws = make_workspace(store)
    make_domain(store, ws)
    make_contacts(store, ws, 6)
    cp = make_campaign(
        store, ws, "", variants=[Variant("a", A, 1), Variant("b", B, 1)], variant_seed=11
    )
    send(store, ws, cp, tmp_path / "outbox.jsonl")
    m = t.messages
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(m.c.id, m.c.public_id, m.c.contact_id, m.c.variant)
            .where(m.c.campaign_id == cp.id)
            .order_by(m.c.id)
        ).all()
    by: dict[str, list[tuple[int, str, int]]] = {"a": [], "b": []}
    for r in rows:
        by[r.variant].append((r.id, r.public_id, r.contact_id))
    assert [len(by["a"]), len(by["b"])] == [3, 3]
    delivered = [*by["a"][:2], *by["b"]]
    store.messages.apply_receipts(
        ws.id, [Receipt(x[1], "delivered", NOW_US) for x in delivered],
        skip_unknown=False, source="t", now_us=NOW_US,
    )  # fmt: skip
    link = cp.links[0].id
    plan = [
        (by["a"][0], HUMAN), (by["a"][0], HUMAN), (by["a"][1], SCANNER), (by["a"][2], HUMAN),
        (by["b"][0], HUMAN), (by["b"][1], HUMAN), (by["b"][1], SCANNER), (by["b"][2], SCANNER),
    ]  # fmt: skip
    records = [
        ClickRecord(f"k{n}", f"tok{n}", cp.id, link, mid, contact, NOW_US + n, "GET",
                    "203.0.113.9", "Mozilla/5.0", {})
        for n, ((mid, _, contact), _) in enumerate(plan)
    ]  # fmt: skip
    store.clicks.insert_clicks(records, [v for _, v in plan])
    found = store.campaigns.find_campaign(ws.id, cp.slug)
    assert found is not None
    return ws, found


def test_the_report_per_variant_is_exact(store: Repos, tmp_path: Path) -> None:
    ws, cp = _scenario(store, tmp_path)
    report = variants.variant_report(store.reports, ws, cp)
    rows = {r["name"]: r for r in report["variants"]}  # type: ignore[attr-defined]
    a, b = rows["a"], rows["b"]
    assert (a["messages"], a["delivered"], a["unique_clickers"]) == (3, 2, 2)
    assert (b["messages"], b["delivered"], b["unique_clickers"]) == (3, 3, 2)
    assert a["ctr"] == pytest.approx(1 / 2) and b["ctr"] == pytest.approx(2 / 3)
    wa, wb = stats.wilson(1, 2), stats.wilson(2, 3)
    assert wa is not None and wb is not None
    assert a["ctr_interval"] == {"low": wa.low, "high": wa.high}
    assert b["ctr_interval"] == {"low": wb.low, "high": wb.high}
    cmp = stats.compare(ArmState("a", 2, 1), ArmState("b", 3, 2))
    assert cmp is not None and a["versus_control"] is None
    assert b["versus_control"]["difference"] == pytest.approx(2 / 3 - 1 / 2)
    assert b["versus_control"]["p_value"] == pytest.approx(cmp.p_value)
    assert b["versus_control"]["interval"]["low"] == pytest.approx(cmp.interval.low)
    probs = stats.best_probabilities([ArmState("a", 2, 1), ArmState("b", 3, 2)], seed=11)
    assert [a["probability_best"], b["probability_best"]] == probs
    assert report["sample_ratio"] == {"p_value": pytest.approx(1.0), "mismatch": False}
    assert report["control"] == "a" and report["conversions"] is None


def test_api_checks_and_report(api: Api) -> None:
    answers = api.calls([
        ("POST", "/v1/campaigns", {"json": {"name": "V1", "variants": [
            {"name": "a", "template": A}]}}),
        ("POST", "/v1/campaigns", {"json": {"name": "V2", "variants": [
            {"name": "a", "template": A}, {"name": "a", "template": B}]}}),
        ("POST", "/v1/campaigns", {"json": {"name": "V3", "variants": [
            {"name": "a", "template": A}, {"name": "b", "template": "no link"}]}}),
        ("POST", "/v1/campaigns", {"json": {"name": "V4", "template": A, "variants": [
            {"name": "a", "template": A}, {"name": "b", "template": B}]}}),
        ("POST", "/v1/campaigns", {"json": {"name": "V5", "variants": [
            {"name": "a", "template": A}, {"name": "b", "template": "{nope} https://x.example"}]}}),
        ("POST", "/v1/campaigns", {"json": {"name": "V6", "template": A}}),
        ("POST", "/v1/campaigns", {"json": {"name": "V7", "template": "https://x.example"}}),
    ])  # fmt: skip
    assert "2 to 10" in problem(answers[0], 422, "variants")["detail"]
    assert "used twice" in problem(answers[1], 422, "variants/1/name")["detail"]
    assert "same number of links" in problem(answers[2], 422, "variants/1/template")["detail"]
    problem(answers[3], 422, "template")
    problem(answers[4], 422, "variants/1/template")
    assert "variant" in problem(answers[5], 422, "template")["detail"]  # no variants: refused
    plain = ok(answers[6], 201)
    problem(api.call("GET", f"/v1/campaigns/{plain['slug']}/variants/report"), 422, "campaign")
    made = ok(api.call("POST", "/v1/campaigns", json={"name": "V8", "variants": [
        {"name": "a", "template": A, "share": 3}, {"name": "b", "template": B}]}), 201)  # fmt: skip
    assert made["template"] == A
    report = ok(api.call("GET", f"/v1/campaigns/{made['slug']}/variants/report"))
    assert [(v["name"], v["share"], v["messages"]) for v in report["variants"]] == [
        ("a", 3, 0), ("b", 1, 0),
    ]  # fmt: skip
    assert report["sample_ratio"] is None


def test_cli_create_and_show(api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_contacts(Repos.on(api.container.engine), api.ws, 3)
    monkeypatch.setenv("CLICKTRAIL_DATABASE_URL", api.container.settings.database_url)
    monkeypatch.setenv("CLICKTRAIL_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    ws = ["--workspace", api.ws.slug]
    r = runner.invoke(cli_app, ["campaign", "create", "Split", *ws, "--variant", f"a:{A}",
                                "--variant", f"b:{B}", "--shares", "2,1",
                                "--variant-seed", "9"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "variant a (share 2): GSM-7" in r.output
    r = runner.invoke(cli_app, ["campaign", "variants", "split", *ws, "--json"])
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert shown["seed"] == 9 and [v["share"] for v in shown["variants"]] == [2, 1]
    assert shown["costs"]["b"]["tracked"]["encoding"] == "GSM-7"
    r = runner.invoke(cli_app, ["campaign", "create", "Bad", *ws, "--variant", f"a:{A}",
                                "--variant", f"b:{B}", "--shares", "2"])  # fmt: skip
    assert r.exit_code != 0 and "--shares" in r.output


def test_the_dashboard_shows_the_variants(api: Api, tmp_path: Path) -> None:
    """The campaign page of a campaign with variants has the variants table with each CTR's
    interval; a campaign without variants has none."""
    store = Repos.on(api.container.engine)
    make_contacts(store, api.ws, 4)
    cp = make_campaign(store, api.ws, "", slug="split", variant_seed=3,
                       variants=[Variant("a", A, 1), Variant("b", B, 1)])  # fmt: skip
    send(store, api.ws, cp, tmp_path / "outbox.jsonl")
    ids = store.messages.queued_or_sent_ids(cp.id, 10)
    store.messages.apply_receipts(
        api.ws.id, [Receipt(i, "delivered", NOW_US) for i in ids],
        skip_unknown=False, source="t", now_us=NOW_US,
    )  # fmt: skip
    make_campaign(store, api.ws, "Plain https://shop.example/p", slug="plain")

    async def use(c: httpx.AsyncClient) -> tuple[str, str]:
        await sign_in(c, api.key)
        split, plain = (
            await c.get("/dashboard/campaigns/split"),
            await c.get("/dashboard/campaigns/plain"),
        )
        assert split.status_code == 200 and plain.status_code == 200, split.text
        return split.text, plain.text

    split, plain = in_process(api.container, HOST, use)
    assert 'id="variants"' in split and 'id="variants"' not in plain
    assert 'data-variant="a"' in split and 'data-variant="b"' in split
    # 2 delivered and no clicker each: 0.0 % with Wilson's interval 0–65.8 %.
    table = split[
        split.index('id="variants"') : split.index("</section>", split.index('id="variants"'))
    ]
    assert table.count('data-metric="ctr">0.0%') == 2
    assert table.count('data-metric="ctr-interval">0.0–65.8%') == 2
    assert "Sample ratio: p = 1" in split
