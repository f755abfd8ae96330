"""The report per variant of a campaign (services/variants.py, docs/experiments.md): per
variant, its messages, the delivered ones and the unique counted clickers, from the messages
and the per-recipient click rollup (`message_clicks`: one row per clicked message, with the
flag of a counted engagement click). Test sends never count."""

from __future__ import annotations

import sqlalchemy as sa

from clicktrail.domain.models import Campaign
from clicktrail.domain.report import F_ENG
from clicktrail.domain.status import Status
from clicktrail.services.variants import VariantFigures
from clicktrail.storage import tables as t

m, mc = t.messages, t.message_clicks
_delivered = sa.case((m.c.status == Status.DELIVERED.value, 1), else_=0)
_clicked = sa.case((mc.c.flags.op("&")(F_ENG) != 0, 1), else_=0)

# One pass over the campaign's messages (ix_messages_campaign_id_status) with their rollup row.
FIGURES = (
    sa.select(
        m.c.variant,
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(_delivered), 0),
        sa.func.coalesce(sa.func.sum(_clicked), 0),
        sa.func.coalesce(sa.func.sum(_delivered * _clicked), 0),
    )
    .select_from(
        m.outerjoin(mc, sa.and_(mc.c.campaign_id == m.c.campaign_id, mc.c.message_id == m.c.id))
    )
    .where(
        m.c.campaign_id == sa.bindparam("campaign_id"),
        m.c.variant.is_not(None),
        m.c.is_test.is_(sa.false()),
    )
    .group_by(m.c.variant)
)


class VariantQueries:
    """The per-variant counts over one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def variant_figures(self, campaign: Campaign) -> dict[str, VariantFigures]:
        """Return the figures of each variant of `campaign` that has messages, by name."""
        with self.engine.connect() as conn:
            rows = conn.execute(FIGURES, {"campaign_id": campaign.id}).all()
        return {
            str(name): VariantFigures(str(name), int(n), int(d), int(c), int(dc))
            for name, n, d, c, dc in rows
        }
