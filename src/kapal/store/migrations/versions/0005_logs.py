"""Logs: log_drains; log sessions that search (grep, since)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 10:40:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "log_drains",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
        sa.UniqueConstraint("app_id", "url", name="uq_log_drains_app_url"),
    )
    op.create_index("ix_log_drains_app_id", "log_drains", ["app_id"])
    with op.batch_alter_table("log_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grep", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("since", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("log_sessions", schema=None) as batch_op:
        batch_op.drop_column("since")
        batch_op.drop_column("grep")
    op.drop_index("ix_log_drains_app_id", table_name="log_drains")
    op.drop_table("log_drains")
