"""Credentials never reach MLflow, metadata or fingerprint records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlinfra.core.redact import REDACTED, hide_password, is_secret_key, redact, redact_mapping

SECRET_KEYS = [
    "password",
    "db_password",
    "DB-PASSWORD",
    "passwd",
    "api_key",
    "API-KEY",
    "apikey",
    "token",
    "hf_token",
    "secret",
    "client_secret",
    "aws.secret_access_key",
    "private_key",
    "credentials",
    "key",
    "storage.sas",
]
PLAIN_KEYS = [
    "learning_rate",
    "run_key",
    "study_key",
    "trial_key_hash",
    "run_key_hash",
    "tokenizer",
    "max_tokens",
    "keyword",
    "monkey",
    "keys_seen",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_credential_keys_are_secret(key: str) -> None:
    assert is_secret_key(key)
    assert redact(key, "hunter2") == REDACTED


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_other_keys_are_not(key: str) -> None:
    assert not is_secret_key(key)
    assert redact(key, "value") == "value"


def test_url_passwords_are_hidden_under_any_key() -> None:
    assert (
        redact("url", "postgresql://user:pw@host:5432/db") == "postgresql://user:***@host:5432/db"
    )
    assert redact("note", "from https://a:b@x.y/z, then") == "from https://a:***@x.y/z, then"
    assert redact("url", "http://host:5000/path") == "http://host:5000/path"
    assert hide_password("postgresql://u:p@h/db") == "postgresql://u:***@h/db"


def test_mappings_are_walked_and_copied() -> None:
    values = {"db": {"password": "x", "host": "h"}, "token": "t", "urls": ["http://u:p@h/"]}
    clean = redact_mapping(values)
    assert clean == {
        "db": {"password": REDACTED, "host": "h"},
        "token": REDACTED,
        "urls": ["http://u:***@h/"],
    }
    assert values["db"]["password"] == "x"  # the input is not changed


def test_metadata_never_holds_a_credential(tmp_path: Path) -> None:
    from mlinfra.metadata import read_metadata, update_metadata

    update_metadata(
        tmp_path / "run",
        {"db_password": "hunter2", "tracking": {"uri": "postgresql://u:hunter2@h/db"}},
    )
    text = (tmp_path / "run" / "metadata.json").read_text()
    assert "hunter2" not in text
    meta = read_metadata(tmp_path / "run")
    assert meta["db_password"] == REDACTED and meta["tracking"]["uri"].endswith(":***@h/db")


def test_fingerprint_records_redact_config_values_but_hash_them() -> None:
    from mlinfra.fingerprints import config_fingerprint
    from mlinfra.fingerprints.bundle import Fingerprints
    from mlinfra.fingerprints.code import CodeFingerprint
    from mlinfra.fingerprints.environment import environment_fingerprint

    one = config_fingerprint({"data": {"token": "hunter2", "name": "x"}})
    two = config_fingerprint({"data": {"token": "other", "name": "x"}})
    assert one.hash != two.hash  # identity covers the real value
    fps = Fingerprints(
        one, (), CodeFingerprint("0" * 64, "files", None, False), environment_fingerprint(), "", ""
    )
    record = json.dumps(fps.record())
    assert "hunter2" not in record and '"data.token": "***"' in record


@pytest.mark.timeout(20)
def test_long_values_are_redacted_in_bounded_time() -> None:
    # one unbounded URL pattern backtracked quadratically here: minutes for a 200 KB blob
    blob = "x" * 2_000_000 + "://" + "y" * 1_000_000
    assert redact("blob", blob) == blob
    tail = blob + " postgresql://u:pw@h/db"
    assert redact("blob", tail).endswith("postgresql://u:***@h/db")
