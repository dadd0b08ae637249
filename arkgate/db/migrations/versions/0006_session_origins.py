"""session origins: which client (hashed IP) opened each session, to bound unfunded ones

Revision ID: 0006
Revises: 0001
Create Date: 2026-12-03 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_origins",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mariadb").with_variant(mysql.DATETIME(fsp=6), "mysql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["session_id"], ["sessions.id"], name=op.f("fk_session_origins_session_id")),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_session_origins")),
    )
    op.create_index(op.f("ix_session_origins_client_key"), "session_origins", ["client_key"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_session_origins_client_key"), table_name="session_origins")
    op.drop_table("session_origins")
