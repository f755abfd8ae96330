"""Provider accounts of workspaces, and the message lookups their receipts need.

Implements `services.providers.ProviderStore` on the `sms_providers` table (migration 0008).
Each public method is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from clicktrail.domain.errors import Conflict
from clicktrail.services.providers import MessageRef, ProviderConfig
from clicktrail.storage import tables as t
from clicktrail.storage.sql import chunks


class ProviderRepo:
    """Provider accounts on one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @staticmethod
    def _select() -> sa.Select[Any]:
        p, w = t.sms_providers, t.workspaces
        return sa.select(p, w.c.public_id.label("workspace_ref")).join(
            w, w.c.id == p.c.workspace_id
        )

    @staticmethod
    def _config(r: Any) -> ProviderConfig:
        return ProviderConfig(
            id=r.id,
            public_id=r.public_id,
            workspace_id=r.workspace_id,
            workspace_ref=r.workspace_ref,
            name=r.name,
            kind=r.kind,
            settings=dict(r.settings),
            secrets=dict(r.secrets),
            created_us=r.created_us,
            updated_us=r.updated_us,
            unknown_receipts=r.unknown_receipts,
            last_receipt_us=r.last_receipt_us,
        )

    def add_provider(
        self,
        *,
        public_id: str,
        workspace_id: int,
        name: str,
        kind: str,
        settings: dict[str, Any],
        secrets: dict[str, str],
        now_us: int,
    ) -> ProviderConfig:
        """Store a provider account. Raises `Conflict` if the workspace has one of that name."""
        p = t.sms_providers
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    p.insert(),
                    {
                        "public_id": public_id,
                        "workspace_id": workspace_id,
                        "name": name,
                        "kind": kind,
                        "settings": settings,
                        "secrets": secrets,
                        "unknown_receipts": 0,
                        "created_us": now_us,
                        "updated_us": now_us,
                    },
                )
        except sa.exc.IntegrityError:
            raise Conflict(f"a provider {name!r} already exists", field="name") from None
        found = self.find_provider(workspace_id, name)
        assert found is not None
        return found

    def list_providers(self, workspace_id: int) -> list[ProviderConfig]:
        """Return the workspace's provider accounts by name."""
        p = t.sms_providers
        with self.engine.connect() as conn:
            rows = conn.execute(
                self._select().where(p.c.workspace_id == workspace_id).order_by(p.c.name)
            ).all()
        return [self._config(r) for r in rows]

    def find_provider(self, workspace_id: int, name: str) -> ProviderConfig | None:
        """Return the workspace's provider account `name`, or None."""
        p = t.sms_providers
        with self.engine.connect() as conn:
            r = conn.execute(
                self._select().where(p.c.workspace_id == workspace_id, p.c.name == name)
            ).first()
        return self._config(r) if r else None

    def remove_provider(self, workspace_id: int, name: str) -> bool:
        """Delete the workspace's provider account `name`; return whether one was deleted."""
        p = t.sms_providers
        with self.engine.begin() as conn:
            done = conn.execute(
                p.delete().where(p.c.workspace_id == workspace_id, p.c.name == name)
            )
        return bool(done.rowcount)

    def providers_of_kind(self, kind: str, name: str | None = None) -> list[ProviderConfig]:
        """Return every workspace's provider accounts of `kind` (and `name`), oldest first."""
        p = t.sms_providers
        query = self._select().where(p.c.kind == kind)
        if name is not None:
            query = query.where(p.c.name == name)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(p.c.id)).all()
        return [self._config(r) for r in rows]

    def message_for_receipt(
        self, workspace_id: int, provider_message_id: str | None, message_id: str | None
    ) -> MessageRef | None:
        """Return the workspace's message with the provider's id `provider_message_id`, else
        the one whose id is `message_id` (echoed back by the provider), else None."""
        m, cp = t.messages, t.campaigns
        base = (
            sa.select(m.c.id, m.c.public_id, m.c.provider_message_id)
            .join(cp, cp.c.id == m.c.campaign_id)
            .where(cp.c.workspace_id == workspace_id)
            .limit(1)
        )
        with self.engine.connect() as conn:
            r = None
            if provider_message_id:
                r = conn.execute(base.where(m.c.provider_message_id == provider_message_id)).first()
            if r is None and message_id:
                r = conn.execute(base.where(m.c.public_id == message_id)).first()
        return MessageRef(r.id, r.public_id, r.provider_message_id) if r else None

    def note_provider_ref(self, message: MessageRef, provider: str, ref: str) -> None:
        """Record the provider's id of a message that has none yet (and who sent it)."""
        m = t.messages
        with self.engine.begin() as conn:
            conn.execute(
                m.update()
                .where(m.c.id == message.id, m.c.provider_message_id.is_(None))
                .values(
                    provider_message_id=ref[:128],
                    provider=sa.func.coalesce(m.c.provider, provider),
                )
            )

    def record_delivery_error(
        self, message: MessageRef, code: str | None, text: str | None
    ) -> None:
        """Keep why a message was not delivered, in the provider's code and words."""
        m = t.messages
        with self.engine.begin() as conn:
            conn.execute(
                m.update()
                .where(m.c.id == message.id)
                .values(error_code=code[:64] if code else None, error_message=text)
            )

    def note_receipts(self, provider_id: int, unknown: int, now_us: int) -> None:
        """Count a webhook request on a provider: when, and how many unknown receipts."""
        p = t.sms_providers
        with self.engine.begin() as conn:
            conn.execute(
                p.update()
                .where(p.c.id == provider_id)
                .values(
                    unknown_receipts=p.c.unknown_receipts + unknown,
                    last_receipt_us=now_us,
                )
            )

    def known_provider_refs(self, refs: Sequence[str]) -> set[str]:
        """Return which of `refs` some message already carries as its provider's id."""
        m = t.messages
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(refs):
                found.update(
                    conn.execute(
                        sa.select(m.c.provider_message_id).where(
                            m.c.provider_message_id.in_(list(chunk))
                        )
                    ).scalars()
                )
        return found
