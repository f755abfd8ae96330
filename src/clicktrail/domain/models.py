"""The nouns of clicktrail as plain, immutable records (see docs/concepts.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clicktrail.domain.destinations import CLICK_ID_MACRO
from clicktrail.domain.holdout import HoldoutSpec
from clicktrail.domain.variants import VariantSpec

# Placeholders a campaign fills (`Campaign.macro_values`) beside the contact's fields.
# ``{click_id}`` (CLICK_ID_MACRO) belongs in a link's URL only: the redirect puts each click's
# id there.
SUB_MACROS = ("sub1", "sub2", "sub3", "sub4", "sub5")
LINK_MACROS = ("campaign", "click_id", *SUB_MACROS)


@dataclass(frozen=True, slots=True)
class Workspace:
    """A tenant: its domains, contacts, campaigns and API keys."""

    id: int
    public_id: str
    slug: str
    name: str
    is_demo: bool = False


@dataclass(frozen=True, slots=True)
class Domain:
    """A short host owned by one workspace; links look like ``scheme://host/prefix/TOKEN``."""

    id: int
    workspace_id: int
    host: str
    scheme: str = "https"
    path_prefix: str = "/c/"
    port: int | None = None
    fallback_url: str | None = None

    @property
    def base_url(self) -> str:
        """The short-link prefix, e.g. ``https://sms.example.com/c/``."""
        port = f":{self.port}" if self.port else ""
        return f"{self.scheme}://{self.host}{port}{self.path_prefix}"


@dataclass(frozen=True, slots=True)
class ContactInput:
    """A recipient as read from an import, phone already normalized to E.164.

    `valid_under`: the phone rules (`services.contacts.PHONE_RULES`) under which the number was
    found valid, or None when nobody checked (a send checks it then)."""

    phone: str
    external_id: str | None = None
    first_name: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    valid_under: str | None = None

    def merged_with(self, later: ContactInput) -> ContactInput:
        """Return this contact updated by `later`'s non-empty values (duplicates merge)."""
        return ContactInput(
            phone=self.phone,
            external_id=later.external_id or self.external_id,
            first_name=later.first_name or self.first_name,
            attributes={**self.attributes, **{k: v for k, v in later.attributes.items() if v}},
            valid_under=later.valid_under or self.valid_under,
        )


@dataclass(frozen=True, slots=True)
class Contact:
    """A stored recipient. `valid_under`: the phone rules its number was last found valid under
    (None: not checked since it was stored; see `ContactInput`)."""

    id: int
    workspace_id: int
    phone: str
    external_id: str | None
    first_name: str | None
    attributes: dict[str, Any]
    opted_out: bool = False
    valid_under: str | None = None

    def field_values(self) -> dict[str, str]:
        """Return the values a template placeholder can use, attributes first."""
        values = {k: "" if v is None else str(v) for k, v in self.attributes.items()}
        values["phone"] = self.phone
        values["external_id"] = self.external_id or ""
        values["first_name"] = self.first_name or ""
        values["contact_id"] = self.external_id or ""
        return values


@dataclass(frozen=True, slots=True)
class LinkRow:
    """A stored link: one URL position of a campaign's template."""

    id: int
    index: int
    url: str
    role: str
    utm: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Campaign:
    """A send: one template to an audience through one short domain."""

    id: int
    public_id: str
    workspace_id: int
    slug: str
    name: str
    template: str
    domain_id: int
    list_id: int | None
    status: str
    links: tuple[LinkRow, ...] = ()
    options: CampaignOptions = field(default_factory=lambda: CampaignOptions())
    segment_id: int | None = None  # the audience as a segment (docs/segments.md), not a list

    def macro_values(self) -> dict[str, str]:
        """Return the values of the campaign's link macros (`LINK_MACROS`): ``{campaign}`` its
        slug, ``{sub1}`` … ``{sub5}`` its options (empty when unset), and ``{click_id}`` left
        as written for the redirect to fill with each click's id."""
        values = {f"sub{i}": self.options.subs.get(f"sub{i}", "") for i in range(1, 6)}
        values["campaign"] = self.slug
        values["click_id"] = CLICK_ID_MACRO
        return values


@dataclass(frozen=True, slots=True)
class CampaignOptions:
    """How a campaign's messages are encoded and its links tagged.

    `smart_encoding`: replace look-alike characters (curly quotes, long dashes, odd spaces)
    when that keeps a message GSM-7 and saves segments. `shift_table`: a 3GPP national
    language table (e.g. ``turkish``) that keeps that language's letters in GSM-7.
    `utm_enabled`/`utm`: UTM parameters added to destinations (see `utm_params`).
    `click_id_param`: the query parameter carrying each click's id ('' for none).
    `subs`: values of the link macros ``{sub1}`` … ``{sub5}`` (docs/conversions.md).
    `holdout`: a share of the audience that gets nothing, the baseline of the lift report
    (`domain.holdout`); None for none.
    """

    smart_encoding: bool = False
    shift_table: str | None = None
    utm_enabled: bool = True
    utm: dict[str, str] = field(default_factory=dict)
    click_id_param: str = "ct_cid"
    subs: dict[str, str] = field(default_factory=dict)
    holdout: HoldoutSpec | None = None
    variants: VariantSpec | None = None  # A/B variants (domain.variants); None for none

    def as_dict(self) -> dict[str, Any]:
        """Return the options as stored (``variants`` only when the campaign has some)."""
        stored: dict[str, Any] = {
            "smart_encoding": self.smart_encoding,
            "shift_table": self.shift_table,
            "utm_enabled": self.utm_enabled,
            "utm": dict(self.utm),
            "click_id_param": self.click_id_param,
            "subs": dict(self.subs),
            "holdout": None if self.holdout is None else self.holdout.as_dict(),
        }
        if self.variants is not None:
            stored["variants"] = self.variants.as_dict()
        return stored

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CampaignOptions:
        """Return options from their stored form (missing keys take defaults)."""
        data = data or {}
        return cls(
            bool(data.get("smart_encoding", False)),
            data.get("shift_table"),
            bool(data.get("utm_enabled", True)),
            dict(data.get("utm") or {}),
            str(data.get("click_id_param", "ct_cid")),
            dict(data.get("subs") or {}),
            HoldoutSpec.from_dict(data.get("holdout")),
            VariantSpec.from_dict(data.get("variants")),
        )

    def utm_params(self, campaign_slug: str, link_utm: dict[str, str]) -> dict[str, str]:
        """Return the parameters to add to a link's destination.

        Defaults (source and medium ``sms``, the campaign slug), then the campaign's
        overrides, then the link's; an empty value removes a parameter. None when disabled.
        """
        if not self.utm_enabled:
            return {}
        merged = {"utm_source": "sms", "utm_medium": "sms", "utm_campaign": campaign_slug}
        merged.update(self.utm)
        merged.update(link_utm)
        return {k: v for k, v in merged.items() if v}


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt: message `message_id` reached `status` at `at_us` (µs since epoch)."""

    message_id: str
    status: str
    at_us: int
