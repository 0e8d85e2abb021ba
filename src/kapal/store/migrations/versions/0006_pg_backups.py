"""pg_backups (pg:backups:capture/restore/download) and pg_backup_schedules

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 11:15:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "pg_backups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("addon_id", sa.String(length=36), nullable=True),
        sa.Column("addon_name", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("database_bytes", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["addon_id"], ["addons.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("app_id", "kind", "number", name="uq_pg_backups_app_kind_number"),
    )
    op.create_index("ix_pg_backups_app_id", "pg_backups", ["app_id"])
    op.create_index("ix_pg_backups_addon_id", "pg_backups", ["addon_id"])
    op.create_table(
        "pg_backup_schedules",
        sa.Column("addon_id", sa.String(length=36), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("last_run_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["addon_id"], ["addons.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("addon_id"),
    )


def downgrade() -> None:
    op.drop_table("pg_backup_schedules")
    op.drop_index("ix_pg_backups_addon_id", table_name="pg_backups")
    op.drop_index("ix_pg_backups_app_id", table_name="pg_backups")
    op.drop_table("pg_backups")
