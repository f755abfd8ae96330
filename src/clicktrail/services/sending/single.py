"""One message to one contact: the home of "send one message to one contact" (a campaign's test
send, an automation's follow-up).

`compose_one` wraps a text for a contact (placeholders filled, every link replaced by a fresh
short URL of the campaign's domain, encoded per the campaign's options); the caller stores it
queued in its own transaction (storage makes a link of the campaign for each URL it has none
for). `dispatch` then sends a stored queued message through a provider: the message is claimed
(`queued` → `sending`, committed) before the provider sees it, and its outcome recorded, so a
crash in between leaves it `sending` (in doubt), never queued to be sent again. A message is
not retried here: a refusal for now is recorded as it is (failed, ``retry_later``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clicktrail.domain.ids import new_public_id
from clicktrail.domain.models import Campaign, Contact, Domain
from clicktrail.domain.status import Status
from clicktrail.domain.template import parse_template
from clicktrail.domain.tokens import new_token
from clicktrail.domain.wrapping import encode_message
from clicktrail.services.ports import OutgoingSms, SmsProvider
from clicktrail.services.sending.records import Outcome, SendJobStore


@dataclass(frozen=True, slots=True)
class OneMessage:
    """A message composed for one contact, not stored yet. `links`: (token, link URL,
    destination or None when the link URL is the destination), in the text's order."""

    public_id: str
    campaign_id: int
    contact_id: int
    to_phone: str
    body: str
    encoding: str
    segments: int
    queued_us: int
    links: tuple[tuple[str, str, str | None], ...]

    @property
    def sms(self) -> OutgoingSms:
        """The message as a provider takes it."""
        return OutgoingSms(self.public_id, self.to_phone, self.body, self.encoding, self.segments)


def compose_one(
    text: str,
    campaign: Campaign,
    domain: Domain,
    contact: Contact,
    now_us: int,
    token_factory: Callable[[], str] = new_token,
) -> OneMessage:
    """Return `text` (a template: campaigns' syntax) wrapped for `contact` in `campaign`, each
    link a fresh token of `domain`. Raises `InvalidInput` for a template that does not parse."""
    template = parse_template(text)
    values = {**contact.field_values(), **campaign.macro_values()}
    links: list[tuple[str, str, str | None]] = []
    urls: list[str] = []
    for spec in template.links:
        tok = token_factory()
        dest = spec.destination(values) if spec.is_personalized else None
        links.append((tok, spec.raw, dest))
        urls.append(domain.base_url + tok)
    body, info = encode_message(template, values, urls, campaign.options)
    return OneMessage(
        new_public_id("msg"), campaign.id, contact.id, contact.phone, body, info.encoding,
        info.segments, now_us, tuple(links),
    )  # fmt: skip


def dispatch(
    jobs: SendJobStore, provider: SmsProvider, message_id: int, sms: OutgoingSms,
    clock: Callable[[], int],
) -> Outcome | None:  # fmt: skip
    """Send the stored queued message `message_id` (`sms`) through `provider` and record what
    it answered; return the outcome (None: the message was not queued any more, e.g. another
    process claimed it)."""
    if not jobs.claim_test(message_id, clock()):
        return None
    try:
        results = provider.send([sms])
    except Exception as exc:
        results = []
        error = f"{type(exc).__name__}: {exc}"
    else:
        error = "the provider gave no answer for the message"
    res = results[0] if results else None
    if res is None:
        out = Outcome(sms.message_id, Status.UNKNOWN, None, "in_doubt", error)
    elif res.status == Status.SENT:
        out = Outcome(sms.message_id, Status.SENT, res.provider_message_id)
    else:
        out = Outcome(
            sms.message_id, Status.FAILED, res.provider_message_id,
            res.error_code or ("retry_later" if res.status == Status.QUEUED else None),
            res.error_message
            or ("the provider refused for now; try again" if res.status == Status.QUEUED else None),
        )  # fmt: skip
    jobs.record(provider.name, [out], clock())
    return out
