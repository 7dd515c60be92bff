"""The registry's tables (SQLAlchemy Core), shared by every backend and the maintenance tools."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

__all__ = ["SCHEMA_VERSION", "counters", "meta", "metadata", "outputs", "runs", "versions"]

SCHEMA_VERSION = "1"

metadata = MetaData()

meta = Table(
    "mlinfra_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

runs = Table(
    "mlinfra_runs",
    metadata,
    Column("tracking_uri", String(1024), primary_key=True),
    Column("run_key_hash", String(64), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("experiment_id", String(64), nullable=False),
    Column("run_name", String(255)),
    Column("stage", String(64)),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Index("ix_mlinfra_runs_stage", "stage"),
    Index("ix_mlinfra_runs_updated", "updated_at"),
)

counters = Table(
    "mlinfra_counters",
    metadata,
    Column("counter_key", String(512), primary_key=True),
    Column("next_version", Integer, nullable=False),
)

versions = Table(
    "mlinfra_versions",
    metadata,
    Column("counter_key", String(512), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("run_id", String(64)),
    Column("reserved_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("committed_at", String(32)),
    Index("ix_mlinfra_versions_owner", "counter_key", "owner", "status"),
    Index("ix_mlinfra_versions_status", "status", "expires_at"),
)

# The metadata index: one row per output folder, mirroring its metadata.json (the source of truth,
# from which ``mlinfra.metadata.rebuild_metadata_index`` can rebuild this table). Added after
# schema version 1 was released: a registry without it gains it when opened (additive).
outputs = Table(
    "mlinfra_outputs",
    metadata,
    Column("path", String(1024), primary_key=True),
    Column("process_type", String(64)),
    Column("model", String(255)),
    Column("environment", String(64)),
    Column("spec_fp", String(64)),
    Column("exec_fp", String(64)),
    Column("conv_fp", String(64)),
    Column("variant", Integer),
    Column("trial_id", String(255)),
    Column("parent_training_id", String(255)),
    Column("status", Text, nullable=False),
    Column("run_id", String(64)),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Index("ix_mlinfra_outputs_fp", "spec_fp", "exec_fp"),
    Index("ix_mlinfra_outputs_stage", "process_type"),
    Index("ix_mlinfra_outputs_updated", "updated_at"),
)
