"""Wrap-only: clicktrail wraps the links of messages that your own sender sends.

A sender gives a campaign, a recipient and (usually) the text; clicktrail replaces each URL of
the text by a tracked short link of its own, stores the message and answers the wrapped text
with its id, encoding and segments. The sender sends it, posts delivery receipts to
``POST /v1/messages/status`` like any other, and the campaign's reports count it.

Decisions (docs/providers.md, "Wrap-only API for external senders"):

* **The campaign** is an existing one (slug or id) or one created on first use from a spec
  (name, slug, domain, UTM and click-id options). A campaign used for wrapping becomes
  *wrap-only* (status ``external``): clicktrail never sends it itself, and a campaign that
  clicktrail is sending or has sent cannot be wrapped into.
* **The text** is taken literally: braces are text, not placeholders, and every URL in it is
  wrapped. An item without text gets the campaign's template, personalized for the contact.
  Links are matched to the campaign's links by position: the first URL of the text is the
  campaign's link 1 (keeping its role and UTM overrides) and is redirected to the URL as
  written in this text; positions beyond the campaign's links add links (role ``cta``).
* **The recipient** is a phone (E.164, or national with a region) or the external id of a
  contact. A new phone becomes a contact (with the external id and first name given). An
  opted-out contact gets no message: its item says ``opted_out`` and the sender must not send.
* **Status**: a wrapped message is ``queued`` (provider ``external``) until a receipt moves it
  (``sent``, ``delivered``, ``failed``, ``undelivered``); with `mark_sent` it starts ``sent``.
  Reports count it like any message: sent once a receipt says so, CTR over delivered.
* **Idempotency**: a message is keyed by (campaign, contact, `client_ref`); `client_ref` is
  optional and '' when absent (then one message per contact per campaign). Wrapping the same
  key again returns the stored message and tokens; the same key with another text is a
  conflict (409).
* **All or nothing**: every item is checked before anything is written; errors name the item
  (``/items/3/to``) and the field.

The package: `records` (items, results, the messages to store and the `WrapStore` port),
`wrap` (one wrap call: `wrap_messages`) and `lines` (items read from JSON lines, for the CLI);
the pure parts (a literal text as a template, the text digest) are in `domain.wrapping`.
"""

from clicktrail.services.wrapping.lines import items_from_lines
from clicktrail.services.wrapping.records import (
    EXTERNAL,
    MAX_CLIENT_REF,
    MAX_ITEMS,
    WRAPPABLE,
    CampaignSpec,
    PendingMessage,
    StoredWrap,
    WrapItem,
    WrapOutcome,
    WrappedLink,
    WrapResult,
    WrapStore,
)
from clicktrail.services.wrapping.wrap import SAVE_RETRIES, wrap_messages

__all__ = [
    "EXTERNAL",
    "MAX_CLIENT_REF",
    "MAX_ITEMS",
    "SAVE_RETRIES",
    "WRAPPABLE",
    "CampaignSpec",
    "PendingMessage",
    "StoredWrap",
    "WrapItem",
    "WrapOutcome",
    "WrapResult",
    "WrapStore",
    "WrappedLink",
    "items_from_lines",
    "wrap_messages",
]
