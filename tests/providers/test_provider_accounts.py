"""Provider accounts on SQLite and PostgreSQL: storage, the service's rules, the CLI
(``clicktrail provider add|list|show|remove``, as a process) and the API (``/v1/providers``).
Secrets are never shown: a plain one is masked, an ``${ENV}`` reference is shown as written."""

from __future__ import annotations

import json

import pytest
from provider_fakes import ACCOUNT_SID, AUTH_TOKEN
from provider_world import TWILIO_OPTIONS, Env, problem

from clicktrail.domain.errors import Conflict, InvalidInput, NotFound
from clicktrail.services import providers
from clicktrail.services.providers import MASK
from clicktrail.storage.providers import ProviderRepo
from factories import NOW_US, make_api_key, make_campaign, make_contacts, make_workspace, send

# -- storage and service ------------------------------------------------------------------------


def test_storage_round_trip(env: Env) -> None:
    repo: ProviderRepo = env.container.provider_repo
    added = env.add_provider(
        "tw", "twilio", **{**TWILIO_OPTIONS, "auth_token": "${CLICKTRAIL_PROVIDER_TW_TOKEN}"}
    )
    assert added.public_id.startswith("prv_")
    assert (added.name, added.kind, added.workspace_id) == ("tw", "twilio", env.ws.id)
    assert added.workspace_ref == env.ws.public_id
    assert added.settings["account_sid"] == ACCOUNT_SID
    assert added.secrets == {"auth_token": "${CLICKTRAIL_PROVIDER_TW_TOKEN}"}
    assert repo.find_provider(env.ws.id, "tw") == added
    assert repo.list_providers(env.ws.id) == [added]
    other = make_workspace(env.store)
    assert repo.find_provider(other.id, "tw") is None
    assert repo.list_providers(other.id) == []
    assert repo.providers_of_kind("twilio") == [added]
    assert repo.providers_of_kind("twilio", "tw") == [added]
    assert repo.providers_of_kind("http") == []
    repo.note_receipts(added.id, 2, NOW_US)
    repo.note_receipts(added.id, 1, NOW_US + 5)
    found = repo.find_provider(env.ws.id, "tw")
    assert found is not None
    assert (found.unknown_receipts, found.last_receipt_us) == (3, NOW_US + 5)
    with pytest.raises(Conflict):
        repo.add_provider(public_id="prv_dup", workspace_id=env.ws.id, name="tw", kind="http",
                          settings={}, secrets={}, now_us=NOW_US)  # fmt: skip
    assert repo.remove_provider(env.ws.id, "tw") is True
    assert repo.remove_provider(env.ws.id, "tw") is False
    assert repo.list_providers(env.ws.id) == []


def test_message_lookups_are_scoped_to_the_workspace(env: Env) -> None:
    repo: ProviderRepo = env.container.provider_repo
    make_contacts(env.store, env.ws, 1)
    cp = make_campaign(env.store, env.ws)
    send(env.store, env.ws, cp, env.tmp / "outbox.jsonl")
    (mid,) = env.store.messages.queued_or_sent_ids(cp.id, 10)
    ref = env.store.messages.message_status(mid)["provider_message_id"]  # the outbox uses our id
    found = repo.message_for_receipt(env.ws.id, ref, None)
    assert found is not None
    assert found.public_id == mid
    assert repo.message_for_receipt(env.ws.id, "nope", mid) == found
    other = make_workspace(env.store)
    assert repo.message_for_receipt(other.id, ref, mid) is None
    assert repo.known_provider_refs([ref, "SMunknown"]) == {ref}
    repo.record_delivery_error(found, "30003", "Unreachable")
    row = env.store.messages.message_status(mid)
    assert (row["error_code"], row["error_message"]) == ("30003", "Unreachable")


def test_service_rules(env: Env) -> None:
    with pytest.raises(InvalidInput) as exc:
        env.add_provider("outbox", "twilio", **TWILIO_OPTIONS)
    assert exc.value.field == "name"
    with pytest.raises(InvalidInput) as exc:
        env.add_provider("Twilio Main", "twilio", **TWILIO_OPTIONS)
    assert exc.value.field == "name"
    with pytest.raises(InvalidInput) as exc:
        env.add_provider("sm", "smpp")
    assert exc.value.field == "kind"
    env.add_provider("tw", "twilio", **TWILIO_OPTIONS)
    with pytest.raises(Conflict):
        env.add_provider("tw", "twilio", **TWILIO_OPTIONS)
    with pytest.raises(NotFound) as nf:
        providers.get_provider(env.container.provider_repo, env.ws, "nope")
    assert "outbox, tw" in nf.value.message
    with pytest.raises(NotFound):
        env.container.provider("nope", workspace=env.ws)


def test_masked_shows_references_not_secrets(env: Env) -> None:
    p = env.add_provider("tw", "twilio", **TWILIO_OPTIONS)
    assert p.masked()["auth_token"] == MASK
    q = env.add_provider(
        "tw2", "twilio", **{**TWILIO_OPTIONS, "auth_token": "${CLICKTRAIL_PROVIDER_TW_TOKEN}"}
    )
    assert q.masked()["auth_token"] == "${CLICKTRAIL_PROVIDER_TW_TOKEN}"


# -- API ----------------------------------------------------------------------------------------

TWILIO_BODY = {"name": "tw", "kind": "twilio", "options": {
    **TWILIO_OPTIONS, "public_url": "https://ct.example.com"}}  # fmt: skip


def test_api_create_list_get_delete(env: Env) -> None:
    r = env.call("POST", "/v1/providers", json=TWILIO_BODY)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/v1/providers/tw"
    created = r.json()
    assert created["settings"]["auth_token"] == MASK
    assert AUTH_TOKEN not in r.text
    assert created["status_callback"] == "https://ct.example.com/v1/webhooks/twilio/status"
    assert created["id"].startswith("prv_")
    listed = env.call("GET", "/v1/providers").json()
    assert [p["name"] for p in listed["items"]] == ["tw"]
    assert AUTH_TOKEN not in json.dumps(listed)
    assert env.call("GET", "/v1/providers/tw").json() == created
    problem(env.call("POST", "/v1/providers", json=TWILIO_BODY), 409, "name")
    assert env.call("DELETE", "/v1/providers/tw").status_code == 204
    problem(env.call("GET", "/v1/providers/tw"), 404)
    problem(env.call("DELETE", "/v1/providers/tw"), 404)


def test_api_errors_name_the_field(env: Env) -> None:
    bad_sid = {**TWILIO_BODY, "options": {**TWILIO_BODY["options"], "account_sid": "AC1"}}
    problem(env.call("POST", "/v1/providers", json=bad_sid), 422, "account_sid")
    problem(env.call("POST", "/v1/providers", json={**TWILIO_BODY, "kind": "smpp"}), 422, "/kind")
    problem(env.call("POST", "/v1/providers", json={**TWILIO_BODY, "name": "outbox"}), 422, "name")
    problem(env.call("POST", "/v1/providers", json={"name": "vg", "kind": "http", "options": {
        "preset": "vonage", "params": {"api_key": "k"}}}), 422, "params.api_secret")  # fmt: skip
    problem(env.call("GET", "/v1/providers/%00x"), 404)
    problem(env.call("GET", "/v1/providers", key=None), 401)
    problem(env.call("POST", "/v1/providers", key=None, json=TWILIO_BODY), 401)


def test_api_workspaces_see_only_their_own(env: Env) -> None:
    assert env.call("POST", "/v1/providers", json=TWILIO_BODY).status_code == 201
    other = make_workspace(env.store)
    other_key = make_api_key(env.store, other)
    assert env.call("GET", "/v1/providers", key=other_key).json() == {"items": []}
    problem(env.call("GET", "/v1/providers/tw", key=other_key), 404)
    problem(env.call("DELETE", "/v1/providers/tw", key=other_key), 404)
    assert env.call("GET", "/v1/providers/tw").status_code == 200


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_add_list_show_remove(env: Env) -> None:
    r = env.cli("provider", "add", "tw", "--kind", "twilio", "--account-sid", ACCOUNT_SID,
                "--auth-token", AUTH_TOKEN, "--from", "+15005550006",
                "--public-url", "https://ct.example.com")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "receipts are posted to https://ct.example.com/v1/webhooks/twilio/status" in r.stdout
    r = env.cli("provider", "add", "vg", "--kind", "http", "--preset", "vonage",
                "--param", "api_key=abcd1234", "--param", "api_secret=${CLICKTRAIL_PROVIDER_VONAGE_SECRET}",
                "--param", "from=Acme", "--param", "receipt_token=plain-dlr-token")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "no status callback URL" in r.stdout
    listed = env.cli("provider", "list")
    assert listed.returncode == 0, listed.stderr
    for word in ("outbox", "tw", "twilio", "+15005550006", "vg", "vonage"):
        assert word in listed.stdout
    as_json = json.loads(env.cli("provider", "list", "--json").stdout)
    assert [p["name"] for p in as_json] == ["tw", "vg"]
    shown = env.cli("provider", "show", "vg")
    data = json.loads(shown.stdout)
    assert data["settings"]["api_secret"] == "${CLICKTRAIL_PROVIDER_VONAGE_SECRET}"
    assert data["settings"]["receipt_token"] == MASK
    everything = listed.stdout + shown.stdout + env.cli("provider", "show", "tw").stdout
    assert AUTH_TOKEN not in everything
    assert "plain-dlr-token" not in everything
    assert env.cli("provider", "remove", "tw").returncode == 0
    gone = env.cli("provider", "show", "tw")
    assert gone.returncode == 3
    assert "provider 'tw' not found" in gone.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--kind", "twilio", "--account-sid", "AC1", "--auth-token", "x", "--from", "+1"],
         "account_sid must be AC"),
        (["--kind", "twilio", "--account-sid", ACCOUNT_SID, "--auth-token", "x"], "give the sender"),
        (["--kind", "http", "--preset", "vonage", "--param", "api_key"], "expected NAME=VALUE"),
        (["--kind", "fax"], "provider kind 'fax'"),
    ],
)  # fmt: skip
def test_cli_bad_input_exits_2_naming_it(env: Env, args: list[str], needle: str) -> None:
    r = env.cli("provider", "add", "p1", *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr
    assert env.container.provider_repo.list_providers(env.ws.id) == []
