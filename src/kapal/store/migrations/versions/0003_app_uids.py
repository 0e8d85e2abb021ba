"""apps.uid: the unprivileged uid each app's dynos and builds run as; memory_samples

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 06:10:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

APP_UID_BASE = 1_200_000_000  # kapal.domain.uids.APP_UID_BASE when this was written


def upgrade() -> None:
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uid", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint("uq_apps_uid", ["uid"])
    apps = sa.table(
        "apps",
        sa.column("id", sa.String),
        sa.column("uid", sa.Integer),
        sa.column("created_at", sa.DateTime),
    )
    bind = op.get_bind()
    ids = bind.execute(sa.select(apps.c.id).order_by(apps.c.created_at, apps.c.id)).scalars()
    for number, app_id in enumerate(list(ids), start=1):
        bind.execute(apps.update().where(apps.c.id == app_id).values(uid=APP_UID_BASE + number))

    op.create_table(
        "memory_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("dyno", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("memory_mb", sa.Float(), nullable=False),
        sa.Column("quota_mb", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_memory_samples_app_id", "memory_samples", ["app_id"])
    op.create_index("ix_memory_samples_at", "memory_samples", ["at"])


def downgrade() -> None:
    op.drop_table("memory_samples")
    with op.batch_alter_table("apps", schema=None) as batch_op:
        batch_op.drop_constraint("uq_apps_uid", type_="unique")
        batch_op.drop_column("uid")
