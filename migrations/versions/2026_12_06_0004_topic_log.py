"""the durable topic log (a head per topic and its committed frames) and job hand-offs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_handoffs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("kwargs", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_handoffs")),
    )
    with op.batch_alter_table("job_handoffs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_handoffs_available_at"), ["available_at"], unique=False)

    op.create_table(
        "topic_heads",
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("epoch", sa.String(length=32), nullable=False),
        sa.Column("head", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("topic", name=op.f("pk_topic_heads")),
    )
    with op.batch_alter_table("topic_heads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_topic_heads_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "topic_log",
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("frame", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("topic", "seq", name=op.f("pk_topic_log")),
    )
    with op.batch_alter_table("topic_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_topic_log_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("topic_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_topic_log_created_at"))
    op.drop_table("topic_log")
    with op.batch_alter_table("topic_heads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_topic_heads_updated_at"))
    op.drop_table("topic_heads")
    with op.batch_alter_table("job_handoffs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_handoffs_available_at"))
    op.drop_table("job_handoffs")
