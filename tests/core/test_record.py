"""Run records name the code that made them: the git commit of a development checkout, marked when
its files differ from it, and nothing for code that git does not track."""

import os
import shutil
import subprocess

import pytest

from unseen.core.record import make_record, revision_of

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo, *args):
    env = os.environ | {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, env=env)
    return out.stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    """A repository with a tracked package ``src/pkg`` and one commit."""
    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("X = 1\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path, package


def test_a_clean_checkout_gives_its_commit(checkout):
    repo, package = checkout
    assert revision_of(package) == git(repo, "rev-parse", "HEAD")


def test_an_edited_package_file_marks_the_commit_modified(checkout):
    repo, package = checkout
    (package / "__init__.py").write_text("X = 2\n")
    assert revision_of(package) == git(repo, "rev-parse", "HEAD") + "+modified"


def test_edits_outside_the_package_do_not_mark_it(checkout):
    repo, package = checkout
    (repo / "notes.txt").write_text("untracked\n")
    (repo / "README").write_text("tracked, then edited\n")
    git(repo, "add", "README")
    assert revision_of(package) == git(repo, "rev-parse", "HEAD")


def test_untracked_code_inside_another_repository_has_no_revision(checkout):
    repo, _ = checkout
    installed = repo / "venv" / "site-packages" / "pkg"  # a wheel installed inside a user's project
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("X = 1\n")
    assert revision_of(installed) is None


def test_code_outside_any_repository_has_no_revision(tmp_path):
    (tmp_path / "__init__.py").write_text("X = 1\n")
    assert revision_of(tmp_path) is None


def test_every_record_carries_the_revision_field():
    record = make_record("t", "p", {"a": 1})
    assert "unseen_revision" in record
    assert record["unseen_revision"] is None or len(record["unseen_revision"].split("+")[0]) == 40
