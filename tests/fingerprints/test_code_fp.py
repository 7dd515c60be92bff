"""Code fingerprints against real git repositories (and without git)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlinfra.errors import FingerprintError
from mlinfra.fingerprints import CodeFingerprint, code_fingerprint

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


SOURCES = {
    "train.py": "import model\n\nprint(model.build())\n",
    "pkg/model.py": "def build():\n    return 42\n",
    "config/train.yaml": "epochs: 3\n",
    ".gitignore": "*.log\nscratch/\n",
}


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    _write(root, SOURCES)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_a_clean_tree_is_its_commit(repo: Path, tmp_path: Path) -> None:
    found = code_fingerprint(repo)
    assert isinstance(found, CodeFingerprint)
    assert found.kind == "git"
    assert found.commit == git(repo, "rev-parse", "HEAD")
    assert found.dirty is False
    assert found.changed == ()
    assert len(found.hash) == 64
    assert Path(found.root) == repo.resolve()

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    other = code_fingerprint(clone)
    assert other.commit == found.commit
    assert other.hash == found.hash  # two clones of one commit agree

    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    assert code_fingerprint(repo).hash != found.hash  # another commit, another fingerprint


def test_a_modified_tracked_file_counts_and_reverting_restores(repo: Path) -> None:
    clean = code_fingerprint(repo)
    path = repo / "pkg" / "model.py"
    path.write_text("def build():\n    return 43\n")
    dirty = code_fingerprint(repo)
    assert dirty.hash != clean.hash
    assert dirty.dirty is True
    assert dirty.commit == clean.commit
    assert dirty.changed == ("pkg/model.py",)
    assert dirty.summary()["changed"] == ["pkg/model.py"]

    path.write_text("def build():\n    return 44\n")
    assert code_fingerprint(repo).hash not in (clean.hash, dirty.hash)  # the diff's content

    path.write_text(SOURCES["pkg/model.py"])
    back = code_fingerprint(repo)
    assert back.hash == clean.hash
    assert back.dirty is False


def test_a_tracked_non_python_file_counts_in_git(repo: Path) -> None:
    clean = code_fingerprint(repo)
    (repo / "config" / "train.yaml").write_text("epochs: 4\n")
    assert code_fingerprint(repo).hash != clean.hash


def test_staged_or_not_gives_the_same_hash(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    unstaged = code_fingerprint(repo)
    git(repo, "add", "train.py")
    staged = code_fingerprint(repo)
    assert staged.hash == unstaged.hash
    assert staged.changed == unstaged.changed == ("train.py",)


def test_a_touch_of_a_tracked_file_does_not_count(repo: Path) -> None:
    clean = code_fingerprint(repo)
    os.utime(repo / "train.py", ns=(1, 1))
    assert code_fingerprint(repo).hash == clean.hash


def test_a_deleted_tracked_file_counts(repo: Path) -> None:
    clean = code_fingerprint(repo)
    (repo / "pkg" / "model.py").unlink()
    found = code_fingerprint(repo)
    assert found.hash != clean.hash
    assert found.changed == ("pkg/model.py",)


def test_an_untracked_file_counts_by_its_content(repo: Path) -> None:
    clean = code_fingerprint(repo)
    new = repo / "pkg" / "helpers.py"
    new.write_text("X = 1\n")
    one = code_fingerprint(repo)
    assert one.hash != clean.hash
    assert one.dirty is True
    assert one.changed == ("pkg/helpers.py",)
    new.write_text("X = 2\n")
    two = code_fingerprint(repo)
    assert two.hash not in (clean.hash, one.hash)
    new.unlink()
    assert code_fingerprint(repo).hash == clean.hash


def test_ignored_files_and_empty_folders_do_not_count(repo: Path) -> None:
    clean = code_fingerprint(repo)
    (repo / "run.log").write_text("noise")
    _write(repo, {"scratch/notes.py": "x = 1\n"})
    (repo / "empty" / "folder").mkdir(parents=True)
    found = code_fingerprint(repo)
    assert found.hash == clean.hash
    assert found.dirty is False


def test_outputs_and_mlruns_never_count_even_when_not_ignored(repo: Path) -> None:
    clean = code_fingerprint(repo)
    _write(
        repo,
        {
            "outputs/final_training/metadata.json": "{}",
            "outputs/final_training/model.py": "weights = 1\n",
            "mlruns/1/meta.yaml": "name: x\n",
            "mlartifacts/a.txt": "a",
        },
    )
    found = code_fingerprint(repo)
    assert found.hash == clean.hash
    assert found.changed == ()
    # a folder that merely starts with the same letters is not excluded
    _write(repo, {"outputs_analysis.py": "print(1)\n"})
    assert code_fingerprint(repo).hash != clean.hash


def test_tracked_files_under_an_excluded_folder_do_not_count(repo: Path) -> None:
    _write(repo, {"outputs/report.txt": "v1"})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "outputs committed by mistake")
    clean = code_fingerprint(repo)
    (repo / "outputs" / "report.txt").write_text("v2")
    assert code_fingerprint(repo).hash == clean.hash


def test_custom_excludes_relative_to_a_project_in_a_subfolder(repo: Path) -> None:
    project = repo / "projects" / "ner"
    _write(project, {"train.py": "print(1)\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "project")
    clean = code_fingerprint(project, exclude=("results",))
    assert clean.root == str(repo.resolve())
    _write(project, {"results/out.py": "x = 1\n"})
    assert code_fingerprint(project, exclude=("results",)).hash == clean.hash
    assert code_fingerprint(project).hash != clean.hash  # not excluded by default


def test_a_repository_without_a_commit(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q")
    _write(root, SOURCES)
    found = code_fingerprint(root)
    assert found.kind == "git"
    assert found.commit is None
    assert found.dirty is True
    assert "train.py" in found.changed

    again = code_fingerprint(root)
    assert again.hash == found.hash
    git(root, "add", "train.py")
    assert code_fingerprint(root).hash == found.hash  # staged or not: the same content
    (root / "train.py").write_text("print('other')\n")
    assert code_fingerprint(root).hash != found.hash
    (root / "train.py").write_text(SOURCES["train.py"])
    (root / "run.log").write_text("ignored")
    assert code_fingerprint(root).hash == found.hash


def test_without_git_source_files_are_hashed(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    _write(
        root,
        {
            "train.py": "print(1)\n",
            "pkg/model.py": "X = 1\n",
            "requirements.txt": "numpy\n",
            "config/train.yaml": "epochs: 3\n",
            "data/train.jsonl": "{}\n",
        },
    )
    found = code_fingerprint(root)
    assert found.kind == "files"
    assert found.commit is None
    assert found.dirty is False

    (root / "config" / "train.yaml").write_text("epochs: 4\n")
    (root / "data" / "train.jsonl").write_text('{"a": 1}\n')
    (root / "README.md").write_text("docs")
    assert code_fingerprint(root).hash == found.hash  # not source files

    for rel in ("pkg/model.py", "requirements.txt"):
        path = root / rel
        original = path.read_text()
        path.write_text(original + "# edited\n")
        assert code_fingerprint(root).hash != found.hash, rel
        path.write_text(original)
    assert code_fingerprint(root).hash == found.hash

    (root / "pkg" / "model.py").rename(root / "pkg" / "network.py")
    assert code_fingerprint(root).hash != found.hash  # names count too


def test_without_git_excluded_hidden_and_virtualenv_folders_do_not_count(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    _write(root, {"train.py": "print(1)\n"})
    found = code_fingerprint(root)
    _write(
        root,
        {
            "outputs/model.py": "x\n",
            "mlruns/x.py": "x\n",
            ".venv/lib/site.py": "x\n",
            "venv/lib/site.py": "x\n",
            "pkg/__pycache__/m.py": "x\n",
            "build/lib/m.py": "x\n",
            "thing.egg-info/setup.cfg": "x\n",
        },
    )
    assert code_fingerprint(root).hash == found.hash
    _write(root, {"src/new.py": "x\n"})
    assert code_fingerprint(root).hash != found.hash


def test_use_git_false_hashes_source_files_in_a_work_tree(repo: Path) -> None:
    files = code_fingerprint(repo, use_git=False)
    assert files.kind == "files"
    assert files.commit is None
    (repo / "config" / "train.yaml").write_text("epochs: 9\n")
    assert code_fingerprint(repo, use_git=False).hash == files.hash
    assert code_fingerprint(repo).hash != code_fingerprint(repo, use_git=False).hash
    (repo / "train.py").write_text("print(2)\n")
    assert code_fingerprint(repo, use_git=False).hash != files.hash


def test_a_root_that_is_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(FingerprintError, match="not a folder"):
        code_fingerprint(tmp_path / "absent")
    (tmp_path / "file.py").write_text("x")
    with pytest.raises(FingerprintError, match="not a folder"):
        code_fingerprint(tmp_path / "file.py")


def test_before_the_first_commit_staged_files_are_listed_as_changed(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q")
    _write(root, {"a.py": "x = 1\n", "b.py": "y = 2\n"})
    git(root, "add", "a.py")
    found = code_fingerprint(root)
    assert found.changed == ("a.py", "b.py")


def test_tool_lock_files_do_not_count_but_dependency_locks_do(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print(1)\n")
    before = code_fingerprint(tmp_path, use_git=False).hash
    (tmp_path / "registry.db.lock").write_text("")  # a running tool's lock file
    (tmp_path / "metadata.json.lock").write_text("")
    assert code_fingerprint(tmp_path, use_git=False).hash == before
    (tmp_path / "poetry.lock").write_text("[[package]]\n")
    assert code_fingerprint(tmp_path, use_git=False).hash != before
