"""Data fingerprints: sensitivity both ways, symbolic links, bad input, concurrent writers and the
stat cache, all on real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import xxhash

from mlinfra.errors import DataChangedError, FingerprintError
from mlinfra.fingerprints import data_fingerprint, hash_file
from mlinfra.fingerprints.data import RACY_WINDOW_NS

MIB = 1 << 20


def _tree(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
    return root


def _age(root: Path) -> None:
    """Move every file's mtime well before the racy window, so the stat cache may keep it."""
    old = time.time_ns() - 10 * RACY_WINDOW_NS
    paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    for path in paths:
        os.utime(path, ns=(old, old))


BASE = {
    "train.jsonl": '{"text": "alice", "label": 1}\n',
    "test.jsonl": '{"text": "bob", "label": 0}\n',
    "images/cat.png": b"\x89PNG\r\n\x1a\n" + bytes(range(256)),
    "images/deep/dog.png": b"\x89PNG\r\n\x1a\n" + bytes(range(255, -1, -1)),
}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return _tree(tmp_path / "data", BASE)


def _fp(path: Path, **kwargs: object) -> str:
    return data_fingerprint(path, **kwargs).hash  # type: ignore[arg-type]


# ---- what changes it ------------------------------------------------------------------------


def test_the_result_describes_the_tree(data: Path) -> None:
    found = data_fingerprint(data)
    assert len(found.hash) == 64 and int(found.hash, 16) >= 0
    assert found.kind == "dir"
    assert found.files == 4
    assert found.bytes == sum(len(v.encode() if isinstance(v, str) else v) for v in BASE.values())
    assert found.bytes_read == found.bytes  # no cache: everything read
    assert [e.path for e in found.entries] == sorted(BASE)
    cat = next(e for e in found.entries if e.path == "images/cat.png")
    assert cat.digest == xxhash.xxh3_128(BASE["images/cat.png"]).hexdigest()
    assert found.summary()["files"] == 4


def test_one_byte_of_content_changes_it(data: Path) -> None:
    before = _fp(data)
    path = data / "images" / "deep" / "dog.png"
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01
    path.write_bytes(bytes(raw))
    assert _fp(data) != before
    raw[100] ^= 0x01
    path.write_bytes(bytes(raw))
    assert _fp(data) == before


def test_renaming_or_moving_a_file_changes_it(data: Path) -> None:
    before = _fp(data)
    (data / "test.jsonl").rename(data / "valid.jsonl")
    renamed = _fp(data)
    assert renamed != before
    (data / "valid.jsonl").rename(data / "images" / "test.jsonl")
    moved = _fp(data)
    assert moved not in (before, renamed)
    (data / "images" / "test.jsonl").rename(data / "test.jsonl")
    assert _fp(data) == before


def test_adding_or_removing_a_file_changes_it(data: Path) -> None:
    before = _fp(data)
    (data / "extra.txt").write_bytes(b"")  # even an empty file counts
    added = _fp(data)
    assert added != before
    (data / "extra.txt").unlink()
    assert _fp(data) == before
    (data / "train.jsonl").unlink()
    assert _fp(data) not in (before, added)


def test_an_empty_folder_does_not_change_it(data: Path) -> None:
    before = _fp(data)
    (data / "empty" / "nested").mkdir(parents=True)
    assert _fp(data) == before


def test_a_touch_does_not_change_it_but_the_file_is_read_again(data: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _age(data)
    first = data_fingerprint(data, cache_dir=cache)
    assert first.bytes_read == first.bytes
    warm = data_fingerprint(data, cache_dir=cache)
    assert warm.hash == first.hash
    assert warm.bytes_read == 0  # every file from the stat cache

    touched = data / "train.jsonl"
    os.utime(touched)  # mtime now, content unchanged
    after_touch = data_fingerprint(data, cache_dir=cache)
    assert after_touch.hash == first.hash
    assert after_touch.bytes_read == touched.stat().st_size  # only the touched file re-read

    # still inside the racy window: not cached, read again
    again = data_fingerprint(data, cache_dir=cache)
    assert again.bytes_read == touched.stat().st_size
    _age(data)
    data_fingerprint(data, cache_dir=cache)  # records the aged stats
    assert data_fingerprint(data, cache_dir=cache).bytes_read == 0


def test_a_copy_elsewhere_has_the_same_hash(data: Path, tmp_path: Path) -> None:
    copy = tmp_path / "somewhere" / "else" / "renamed_root"
    shutil.copytree(data, copy)  # other inodes, other times, other root name
    assert _fp(copy) == _fp(data)


def test_the_listing_order_does_not_matter(tmp_path: Path) -> None:
    names = [f"f{i:03d}.bin" for i in range(60)] + ["a-b/x", "a/x", "a.b", "a0", "A"]
    forward = tmp_path / "forward"
    backward = tmp_path / "backward"
    for root, order in ((forward, names), (backward, list(reversed(names)))):
        for name in order:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(name.encode())
    one, two = data_fingerprint(forward), data_fingerprint(backward)
    assert one.hash == two.hash
    assert [e.path for e in one.entries] == sorted(e.path for e in one.entries)
    assert one.entries == two.entries


def test_ignored_names_do_not_count(data: Path) -> None:
    before = _fp(data)
    _tree(
        data,
        {
            ".git/HEAD": "ref: refs/heads/main\n",
            ".git/objects/ab/cdef": b"\x00" * 50,
            "images/__pycache__/mod.cpython-311.pyc": b"\x00pyc",
            ".DS_Store": b"finder",
            "images/deep/.DS_Store": b"finder",
        },
    )
    found = data_fingerprint(data)
    assert found.hash == before
    assert found.files == 4
    # the same names count when nothing is ignored
    assert _fp(data, ignore=()) != before


def test_custom_ignore_patterns(data: Path) -> None:
    (data / "notes.tmp").write_text("scratch")
    assert _fp(data, ignore=("*.tmp",)) != _fp(data, ignore=())
    (data / "notes.tmp").unlink()
    assert _fp(data, ignore=("*.tmp",)) == _fp(data, ignore=())


def test_a_single_file(data: Path, tmp_path: Path) -> None:
    path = data / "train.jsonl"
    found = data_fingerprint(path)
    assert found.kind == "file"
    assert found.files == 1
    assert found.entries[0].digest == xxhash.xxh3_128(path.read_bytes()).hexdigest()
    copy = tmp_path / "other_name.jsonl"
    shutil.copyfile(path, copy)
    assert _fp(copy) == found.hash  # the content, not the name, of a single file
    copy.write_text("different")
    assert _fp(copy) != found.hash
    # a folder holding only that file is not the same thing as the file
    solo = _tree(tmp_path / "solo", {"train.jsonl": path.read_text()})
    assert _fp(solo) != found.hash


# ---- symbolic links ---------------------------------------------------------------------------


def test_symlinked_file_and_folder_are_followed(data: Path, tmp_path: Path) -> None:
    shared = _tree(tmp_path / "shared", {"big.bin": b"\x01" * 1000, "sub/small.bin": b"\x02"})
    real = tmp_path / "real"
    shutil.copytree(data, real)
    shutil.copytree(shared, real / "linked_dir")
    shutil.copyfile(shared / "big.bin", real / "linked_file.bin")

    (data / "linked_dir").symlink_to(shared, target_is_directory=True)
    (data / "linked_file.bin").symlink_to(shared / "big.bin")
    found = data_fingerprint(data)
    assert found.hash == _fp(real)  # the links read as what they point to
    assert "linked_dir/sub/small.bin" in [e.path for e in found.entries]

    before = found.hash
    (shared / "sub" / "small.bin").write_bytes(b"\x03")  # a change behind the link counts
    assert _fp(data) != before


def test_a_link_to_the_same_folder_twice_is_not_a_loop(data: Path, tmp_path: Path) -> None:
    shared = _tree(tmp_path / "shared", {"x.bin": b"x"})
    (data / "one").symlink_to(shared)
    (data / "two").symlink_to(shared)
    paths = [e.path for e in data_fingerprint(data).entries]
    assert "one/x.bin" in paths and "two/x.bin" in paths


def test_a_folder_linking_to_its_parent_is_a_loop(data: Path) -> None:
    (data / "images" / "deep" / "up").symlink_to(data, target_is_directory=True)
    with pytest.raises(FingerprintError, match="symbolic link loop") as caught:
        data_fingerprint(data)
    assert not isinstance(caught.value, DataChangedError)
    assert caught.value.path == str(data / "images" / "deep" / "up")


def test_a_link_to_itself_is_a_loop(data: Path) -> None:
    (data / "self").symlink_to(data / "self")
    with pytest.raises(FingerprintError, match="loop") as caught:
        data_fingerprint(data)
    assert caught.value.path == str(data / "self")
    with pytest.raises(FingerprintError, match="loop"):
        data_fingerprint(data / "self")  # given directly


def test_a_broken_link_is_an_error_naming_it(data: Path) -> None:
    (data / "images" / "gone.png").symlink_to(data / "nowhere.png")
    with pytest.raises(FingerprintError, match="broken symbolic link") as caught:
        data_fingerprint(data)
    assert caught.value.path == str(data / "images" / "gone.png")
    assert "gone.png" in str(caught.value)
    assert "nowhere.png" in str(caught.value)  # the target it points to


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FingerprintError, match="no such file or folder") as caught:
        data_fingerprint(tmp_path / "absent")
    assert caught.value.path == str(tmp_path / "absent")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "absent")
    with pytest.raises(FingerprintError, match="broken symbolic link"):
        data_fingerprint(dangling)
    with pytest.raises(FingerprintError, match="no such file"):
        hash_file(tmp_path / "absent")


def test_a_fifo_given_directly_is_refused_and_one_inside_is_skipped(
    data: Path, tmp_path: Path
) -> None:
    before = _fp(data)
    os.mkfifo(data / "pipe")
    assert _fp(data) == before  # FIFOs are not data
    with pytest.raises(FingerprintError, match="neither a file nor a folder"):
        data_fingerprint(data / "pipe")


def test_hash_file_on_a_fifo_fails_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            hash_file(fifo)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(1.0)
    hung = thread.is_alive()
    if hung:  # release it: a writer opening the FIFO unblocks the reader's open()
        fd = os.open(fifo, os.O_WRONLY)
        os.close(fd)
        thread.join(5.0)
    assert not hung, "hash_file blocked on a FIFO"
    assert isinstance(outcome.get("error"), FingerprintError)


# ---- unreadable files ---------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_a_file_that_fails_to_read_is_an_error_naming_it(data: Path) -> None:
    # /proc/self/mem is a regular file whose read at offset 0 fails with EIO, even for root
    bad = data / "images" / "bad.bin"
    bad.symlink_to("/proc/self/mem")
    with pytest.raises(FingerprintError, match="reading failed") as caught:
        data_fingerprint(data)
    assert not isinstance(caught.value, DataChangedError)
    assert caught.value.path == str(bad)
    assert "bad.bin" in str(caught.value)


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_nothing_is_cached_when_a_fingerprint_fails(data: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _age(data)
    (data / "zz_bad.bin").symlink_to("/proc/self/mem")
    with pytest.raises(FingerprintError):
        data_fingerprint(data, cache_dir=cache)
    (data / "zz_bad.bin").unlink()
    assert data_fingerprint(data, cache_dir=cache).bytes_read > 0


# ---- a tree that changes while it is hashed ---------------------------------------------------


def test_a_later_file_modified_during_the_scan_is_detected(data: Path) -> None:
    later = data / "train.jsonl"  # sorted last among the files
    assert data_fingerprint(data).entries[-1].path == "train.jsonl"
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        if len(calls) == 1:
            with later.open("ab") as handle:
                handle.write(b'{"text": "mallory"}\n')

    with pytest.raises(DataChangedError) as caught:
        data_fingerprint(data, progress=progress)
    assert caught.value.path == str(later)
    assert "changed" in str(caught.value)


def test_a_later_file_rewritten_with_the_same_size_is_detected(data: Path) -> None:
    later = data / "train.jsonl"
    size = later.stat().st_size

    def progress(done: int, total: int) -> None:
        if later.read_bytes()[:1] == b"{":
            time.sleep(0.02)  # past the listed mtime even with coarse timestamps
            later.write_bytes(b"X" * size)

    with pytest.raises(DataChangedError):
        data_fingerprint(data, progress=progress)


def test_a_file_added_during_the_scan_is_detected(data: Path) -> None:
    def progress(done: int, total: int) -> None:
        new = data / "images" / "late_arrival.png"
        if not new.exists():
            new.write_bytes(b"late")

    with pytest.raises(DataChangedError, match="folder changed while") as caught:
        data_fingerprint(data, progress=progress)
    assert caught.value.path == str(data)
    assert "late_arrival.png" in str(caught.value)


def test_a_file_deleted_during_the_scan_is_a_change(data: Path) -> None:
    later = data / "train.jsonl"

    def progress(done: int, total: int) -> None:
        if later.exists():
            later.unlink()

    with pytest.raises(DataChangedError):
        data_fingerprint(data, progress=progress)


_APPENDER = """
import sys, time
path, marker = sys.argv[1], sys.argv[2]
with open(path, "ab", buffering=0) as out:
    out.write(b"x" * 4096)
    open(marker, "w").close()
    while True:
        out.write(b"x" * 4096)
        time.sleep(0.0005)
"""


def test_a_large_file_appended_by_another_process_while_read(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        for i in range(40):
            out.write(bytes([i]) * MIB)
    marker = tmp_path / "started"
    writer = subprocess.Popen([sys.executable, "-c", _APPENDER, str(big), str(marker)])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), "the writer did not start"
        with pytest.raises(DataChangedError) as caught:
            # a read of 40 MiB takes far longer than one append interval
            for _ in range(20):
                hash_file(big)
        assert caught.value.path == str(big)
        with pytest.raises(DataChangedError):
            data_fingerprint(tmp_path, ignore=("started",))
    finally:
        writer.kill()
        writer.wait(timeout=10)


# ---- large files --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [16 * MIB, 16 * MIB + 1, 40 * MIB + 12345])
def test_hash_file_equals_xxh3_of_the_bytes(tmp_path: Path, size: int) -> None:
    # distinct content in every 8 MiB block: a reordered or repeated block changes the digest
    block = 1 << 20
    payload = b"".join((i.to_bytes(4, "big") * (block // 4)) for i in range(size // block + 1))[
        :size
    ]
    path = tmp_path / "big.bin"
    path.write_bytes(payload)
    seen: list[int] = []
    assert hash_file(path, progress=seen.append) == xxhash.xxh3_128(payload).hexdigest()
    assert sum(seen) == size
    if size > 16 * MIB:  # the pipelined path reports every block
        assert len(seen) == -(-size // (8 * MIB))
    found = data_fingerprint(path)
    assert found.entries[0].digest == xxhash.xxh3_128(payload).hexdigest()
    assert found.bytes == size


def test_hash_file_of_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert hash_file(empty) == xxhash.xxh3_128(b"").hexdigest()


def test_hash_file_checks_the_expected_stat(data: Path) -> None:
    path = data / "train.jsonl"
    old = path.stat()
    path.write_text("something longer than before\n" * 3)
    with pytest.raises(DataChangedError):
        hash_file(path, expected=old)
    assert hash_file(path, expected=path.stat()) == xxhash.xxh3_128(path.read_bytes()).hexdigest()


def test_progress_reports_bytes_done_of_total(data: Path) -> None:
    calls: list[tuple[int, int]] = []
    found = data_fingerprint(data, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (found.bytes, found.bytes)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# ---- the stat cache ---------------------------------------------------------------------------


def _cache_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.json"))


def test_a_damaged_cache_is_ignored_and_rewritten(data: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _age(data)
    good = data_fingerprint(data, cache_dir=cache)
    [cache_file] = _cache_files(cache)
    for damage in ("{not json", "[]", json.dumps({"schema": "other", "files": {}}), ""):
        cache_file.write_text(damage)
        again = data_fingerprint(data, cache_dir=cache)
        assert again.hash == good.hash
        assert again.bytes_read == good.bytes  # nothing trusted
        assert json.loads(cache_file.read_text())["files"]  # rewritten whole
        assert data_fingerprint(data, cache_dir=cache).bytes_read == 0


def test_cache_rows_with_the_wrong_shape_are_not_trusted(data: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _age(data)
    good = data_fingerprint(data, cache_dir=cache)
    [cache_file] = _cache_files(cache)
    raw = json.loads(cache_file.read_text())
    # a digest of the wrong length, and a row that is not a string
    rows = list(raw["files"].items())
    raw["files"] = {rel: row[:-1] for rel, row in rows[:-1]}
    raw["files"][rows[-1][0]] = [1, 2, 3]
    cache_file.write_text(json.dumps(raw))
    again = data_fingerprint(data, cache_dir=cache)
    assert again.hash == good.hash
    assert again.bytes_read == good.bytes


def test_a_cache_of_another_root_is_not_used(data: Path, tmp_path: Path) -> None:
    """A link to the folder has the same files (same inodes and times) under another root; a
    forged cache claiming the other root must not be trusted, while the same forgery under the
    right root is (which shows the test can tell)."""
    cache = tmp_path / "cache"
    alias = tmp_path / "alias"
    alias.symlink_to(data, target_is_directory=True)
    _age(data)
    truth = data_fingerprint(alias, cache_dir=cache)
    [cache_file] = _cache_files(cache)
    raw = json.loads(cache_file.read_text())
    assert raw["root"] == str(alias)
    forged = {rel: row[:-32] + "0" * 32 for rel, row in raw["files"].items()}

    cache_file.write_text(json.dumps({**raw, "root": str(data), "files": forged}))
    other_root = data_fingerprint(alias, cache_dir=cache)
    assert other_root.hash == truth.hash
    assert other_root.bytes_read == truth.bytes

    cache_file.write_text(json.dumps({**raw, "files": forged}))
    trusted = data_fingerprint(alias, cache_dir=cache)
    assert trusted.bytes_read == 0
    assert trusted.hash != truth.hash  # the forged digests were used: the root check matters


def test_roots_have_separate_caches(data: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    other = _tree(tmp_path / "other", {"x.bin": b"x"})
    _age(data)
    _age(other)
    data_fingerprint(data, cache_dir=cache)
    data_fingerprint(other, cache_dir=cache)
    assert len(_cache_files(cache)) == 2
    assert data_fingerprint(data, cache_dir=cache).bytes_read == 0
    assert data_fingerprint(other, cache_dir=cache).bytes_read == 0


def test_content_changed_with_size_and_mtime_restored_is_detected(
    data: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    _age(data)
    path = data / "test.jsonl"
    first = data_fingerprint(data, cache_dir=cache)
    assert data_fingerprint(data, cache_dir=cache).bytes_read == 0
    old = path.stat()
    time.sleep(0.02)  # a new ctime even where timestamps are coarse (one kernel tick)

    # in place: same inode, same size, mtime put back; only ctime tells
    with path.open("r+b") as handle:
        handle.write(b"[")
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    now = path.stat()
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (old.st_size, old.st_mtime_ns, old.st_ino)
    assert now.st_ctime_ns != old.st_ctime_ns
    in_place = data_fingerprint(data, cache_dir=cache)
    assert in_place.hash != first.hash
    assert in_place.bytes_read == old.st_size

    # replaced by a new file of the same size and mtime: the inode tells
    cached = data_fingerprint(data, cache_dir=cache)
    assert cached.bytes_read == 0
    replacement = data / "replacement.tmp"
    replacement.write_bytes(b"]" + path.read_bytes()[1:])
    os.utime(replacement, ns=(old.st_atime_ns, old.st_mtime_ns))
    replacement.replace(path)
    swapped = path.stat()
    assert (swapped.st_size, swapped.st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    assert swapped.st_ino != old.st_ino
    replaced = data_fingerprint(data, cache_dir=cache)
    assert replaced.hash not in (first.hash, in_place.hash)
    assert replaced.bytes_read == old.st_size


def test_without_a_cache_dir_everything_is_read(data: Path) -> None:
    _age(data)
    first = data_fingerprint(data)
    assert data_fingerprint(data).bytes_read == first.bytes


def test_an_unwritable_cache_only_costs_speed(data: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder would go")
    found = data_fingerprint(data, cache_dir=blocker / "cache")
    assert found.hash == _fp(data)
