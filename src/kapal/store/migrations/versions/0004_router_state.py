"""Router state: app_activity (eco sleep), eco_usage (dyno hours), domains, sni_endpoints,
router_metrics

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 08:10:00

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "app_activity",
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("last_request_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id"),
    )
    op.create_table(
        "eco_usage",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "app_id", "month"),
    )
    op.create_table(
        "sni_endpoints",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("certificate_chain", sa.Text(), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_sni_endpoints_app_id", "sni_endpoints", ["app_id"])
    op.create_table(
        "domains",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("hostname", sa.String(length=253), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cname", sa.String(length=255), nullable=True),
        sa.Column("sni_endpoint_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sni_endpoint_id"], ["sni_endpoints.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("hostname"),
    )
    op.create_index("ix_domains_app_id", "domains", ["app_id"])
    op.create_table(
        "router_metrics",
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("minute", sa.DateTime(), nullable=False),
        sa.Column("worker", sa.String(length=32), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("status_1xx", sa.Integer(), nullable=False),
        sa.Column("status_2xx", sa.Integer(), nullable=False),
        sa.Column("status_3xx", sa.Integer(), nullable=False),
        sa.Column("status_4xx", sa.Integer(), nullable=False),
        sa.Column("status_5xx", sa.Integer(), nullable=False),
        sa.Column("histogram", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", "minute", "worker"),
    )
    op.create_index("ix_router_metrics_minute", "router_metrics", ["minute"])


def downgrade() -> None:
    op.drop_table("router_metrics")
    op.drop_table("domains")
    op.drop_table("sni_endpoints")
    op.drop_table("eco_usage")
    op.drop_table("app_activity")
