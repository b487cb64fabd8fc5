"""Rule files as the console edits them: the same files the daemon runs.

A draft (the rule's TOML and its templates) is checked by the very `rules check` code in a
scratch copy of the two folders, so nothing on disk changes until it is saved. Saving
writes each file atomically (temp file + rename, so the daemon never reads half a file),
keeps the previous version under `.console-history/` beside the rules folder, and commits
when the rules folder is a git work tree. A commit that fails or hangs (a hook waiting for
input) leaves the save on disk and is said, bounded by `GIT_SECONDS`.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from campaigner.config import Settings
from campaigner.errors import CampaignerError
from campaigner.files import read_text_file
from campaigner.messages.templates import MessageTemplates
from campaigner.rulebook import check_rules
from campaigner.rules.loader import RuleSet

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LOCALE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
_TOML_LINE = re.compile(r"at line (\d+)")
MAX_DRAFT_CHARS = 64_000
HISTORY = ".console-history"
SAVE_LOCK = "save.lock"
SAVE_WAIT_SECONDS = 10.0  # a save takes well under a second; git hooks included, a few
# Git's share of a save, hooks included: under SAVE_WAIT_SECONDS, so a save queued behind a
# hung commit is not refused for it.
GIT_SECONDS = 8.0


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


class HistoryNotRecorded(CampaignerError):
    """The files are saved, but git did not record them (the reason says why)."""


@dataclass
class Saved:
    """What a save wrote: {file: (before, after)} of the files that changed, and, when they
    were not committed to git as they should have been, why (`HistoryNotRecorded`)."""

    changes: dict[str, tuple[str, str]]
    unrecorded: str | None = None


@dataclass
class Draft:
    """A rule file's text and its templates' texts, keyed by locale ("" for the plain one)."""

    name: str
    rule_text: str
    templates: dict[str, str] = field(default_factory=dict)
    template_stem: str = ""


def rule_path(settings: Settings, name: str) -> Path:
    if not _NAME.match(name):
        raise CampaignerError(f"{name!r} is not a rule file name (letters, digits, '_' and '-')")
    return settings.paths.rules / f"{name}.toml"


def load_draft(settings: Settings, name: str) -> Draft:
    """The rule `name` as it is on disk, with every template file it may render."""
    path = rule_path(settings, name)
    if not path.is_file():
        raise CampaignerError(f"no rule file {path.name} in {settings.paths.rules}")
    text = read_text_file(path, "a rule")
    stem = template_stem(text) or name
    templates = MessageTemplates(settings.paths.templates, settings)
    texts = {
        (locale or ""): templates.sources[file.name]
        for locale, file in templates.variants(stem).items()
        if file.name in templates.sources
    }
    return Draft(name, text, texts, stem)


def fingerprint(draft: Draft) -> str:
    """What the editor was opened on: saving over a newer version must be a choice."""
    digest = hashlib.sha256(draft.rule_text.encode("utf-8", "surrogatepass"))
    for locale, text in sorted(draft.templates.items()):
        digest.update(b"\0" + locale.encode() + b"\0" + text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def template_stem(rule_text: str) -> str:
    found = re.search(r'^\s*template\s*=\s*"([^"]+)"', rule_text, re.MULTILINE)
    if not found:
        return ""
    return found.group(1).removesuffix(".j2").split("/")[-1]


def template_file(stem: str, locale: str) -> str:
    if locale and not _LOCALE.match(locale):
        raise CampaignerError(f"{locale!r} is not a locale such as fa or en_CA")
    if not _NAME.match(stem):
        raise CampaignerError(f"{stem!r} is not a template name")
    return f"{stem}.{locale}.j2" if locale else f"{stem}.j2"


def check_draft(settings: Settings, draft: Draft) -> list[Problem]:
    """What `rules check` would say of the rule folder with this draft saved: the draft's
    own problems, and those it would cause in other rule files (e.g. taking another rule's
    `name`, which makes the daemon drop that rule)."""
    with _scratch(settings, draft) as (scratch_settings, _):
        loaded = check_rules(scratch_settings)
        problems = _problems(loaded, draft, scratch_settings)
        caused = _caused(settings, loaded, draft, scratch_settings)
    return problems + caused


@contextmanager
def scratch_settings(settings: Settings, draft: Draft) -> Iterator[Settings]:
    """Settings whose rule and template folders hold the draft: for preview and simulate."""
    with _scratch(settings, draft) as (scratch, _):
        yield scratch


def save_draft(
    settings: Settings,
    draft: Draft,
    *,
    user: str,
    message: str,
    now: datetime,
    based_on: str = "",
    new: bool = False,
) -> Saved:
    """Write the draft's files if they pass the checks; returns the files that changed, and
    why git did not record them if it did not. Refuses (CampaignerError) a draft with
    problems, one whose files changed on disk since the editor read them (`based_on`, a
    `fingerprint`), and, with `new`, a rule whose file exists already."""
    with saving(settings):
        if new and rule_path(settings, draft.name).exists():
            raise CampaignerError(f"a rule file {draft.name}.toml exists already")
        if based_on and rule_path(settings, draft.name).is_file():
            current = load_draft(settings, draft.name)
            if not hmac.compare_digest(fingerprint(current), based_on):
                raise CampaignerError(
                    f"{draft.name}.toml or its templates changed since you opened it "
                    "(someone else saved); copy your text, reload the page and apply it again"
                )
        return _save(settings, draft, user=user, message=message, now=now)


@contextmanager
def saving(settings: Settings) -> Iterator[None]:
    """One save at a time among all console processes on these files (the daemon's and
    `campaigner console` both serve one): "unchanged since opened" and the write must be
    one step, or two saves that both checked before either wrote lose one edit. A lock on
    a file, not in memory, because only the file system is shared; the kernel drops it
    with the process, so a killed save leaves nothing to clean up. A holder that lives on
    (a stopped process, a stuck git hook) is waited for a bounded time, then the save is
    refused: waiting forever would also keep a server thread."""
    folder = settings.paths.rules.parent / HISTORY
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / SAVE_LOCK, "a+b")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise CampaignerError(
            f"cannot open the save lock {HISTORY}/{SAVE_LOCK}: {exc.strerror}"
        ) from None
    with handle:
        _lock(handle)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock(handle: IO[bytes]) -> None:
    deadline = time.monotonic() + SAVE_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise CampaignerError(
                    f"another save is still in progress (waited {SAVE_WAIT_SECONDS:g} s for "
                    f"the save lock); try again"
                ) from None
            time.sleep(0.05)  # a kernel lock: nothing to wake us, so look again shortly


def _save(settings: Settings, draft: Draft, *, user: str, message: str, now: datetime) -> Saved:
    problems = check_draft(settings, draft)
    if problems:
        raise CampaignerError("; ".join(str(problem) for problem in problems))
    changes: dict[str, tuple[str, str]] = {}
    targets = {rule_path(settings, draft.name): draft.rule_text}
    for locale, text in draft.templates.items():
        targets[settings.paths.templates / template_file(draft.template_stem, locale)] = text
    for path, text in targets.items():
        before = read_text_file(path, "a file") if path.is_file() else ""
        if before == text:
            continue
        _keep_previous(settings, path, before, now)
        write_atomically(path, text)
        changes[str(path)] = (before, text)
    if changes and settings.console.git_commit:
        try:
            commit(settings.paths.rules, [Path(p) for p in changes], user=user, message=message)
        except HistoryNotRecorded as exc:
            return Saved(changes, str(exc))
    return Saved(changes)


def set_enabled(rule_text: str, enabled: bool) -> str:
    """The rule's text with `enabled` set, comments and layout kept."""
    value = "true" if enabled else "false"
    top, rest = _split_top(rule_text)
    line = re.compile(r"^(\s*enabled\s*=\s*)(true|false)(.*)$", re.MULTILINE)
    if line.search(top):
        top = line.sub(lambda m: f"{m.group(1)}{value}{m.group(3)}", top, count=1)
    else:
        top = top.rstrip("\n") + f"\nenabled = {value}\n" + ("\n" if rest else "")
    return top + rest


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def commit(folder: Path, files: list[Path], *, user: str, message: str) -> bool:
    """Commit `files` when `folder` is inside a git work tree; False when it is not. Git
    failing, or taking longer than `GIT_SECONDS` in all, is `HistoryNotRecorded`."""
    deadline = time.monotonic() + GIT_SECONDS
    inside = _git(["-C", str(folder), "rev-parse", "--show-toplevel"], os.environ, deadline)
    if inside.returncode != 0:
        return False
    top = Path(inside.stdout.strip())
    tracked = [str(f.resolve()) for f in files if f.resolve().is_relative_to(top.resolve())]
    if not tracked:
        return False
    author = f"{user} <{user}@campaigner-console>"
    env = {
        **os.environ,
        "GIT_COMMITTER_NAME": user,
        "GIT_COMMITTER_EMAIL": f"{user}@campaigner-console",
    }
    for command in (
        ["add", "--", *tracked],
        ["commit", "--quiet", "--author", author, "-m", message, "--", *tracked],
    ):
        done = _git(["-C", str(top), *command], env, deadline)
        if done.returncode != 0:
            said = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
            raise HistoryNotRecorded(
                f"saved, but history not recorded: git {command[0]}: {said[-1]}"
            )
    return True


def _git(
    args: list[str], env: Mapping[str, str], deadline: float
) -> subprocess.CompletedProcess[str]:
    """Run git, at most until `deadline`. Git runs in a process group of its own, so that
    a hook it started (and whatever the hook started) ends with it: a grandchild holding
    the output pipe open would keep `communicate` waiting after git itself was killed.
    SIGTERM first, which git answers by removing its index.lock; then SIGKILL."""
    try:
        process = subprocess.Popen(
            ["git", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        raise HistoryNotRecorded(f"saved, but history not recorded: git: {exc.strerror}") from None
    with process:
        try:
            out, err = process.communicate(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            _end_group(process)
            raise HistoryNotRecorded(
                f"saved, but history not recorded: git {args[2]} took longer than "
                f"{GIT_SECONDS:g} s (a commit hook waiting?)"
            ) from None
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _end_group(process: subprocess.Popen[str]) -> None:
    for sent in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sent)
        try:
            process.communicate(timeout=2)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def _scratch(settings: Settings, draft: Draft) -> Iterator[tuple[Settings, Path]]:
    if len(draft.rule_text) > MAX_DRAFT_CHARS or any(
        len(text) > MAX_DRAFT_CHARS for text in draft.templates.values()
    ):
        raise CampaignerError(f"a file of the draft is longer than {MAX_DRAFT_CHARS} characters")
    with tempfile.TemporaryDirectory(prefix="campaigner-draft-") as folder:
        base = Path(folder)
        rules, templates = base / "rules", base / "templates"
        rules.mkdir()
        for path in settings.paths.rules.glob("*.toml"):
            if path.name != f"{draft.name}.toml" and path.is_file():
                shutil.copyfile(path, rules / path.name)
        (rules / f"{draft.name}.toml").write_text(draft.rule_text, encoding="utf-8")
        if settings.paths.templates.is_dir():
            shutil.copytree(settings.paths.templates, templates, symlinks=False)
        else:
            templates.mkdir()
        for locale, text in draft.templates.items():
            (templates / template_file(draft.template_stem, locale)).write_text(
                text, encoding="utf-8"
            )
        paths = settings.paths.model_copy(update={"rules": rules, "templates": templates})
        yield settings.model_copy(update={"paths": paths}), base


def _problems(loaded: RuleSet, draft: Draft, scratch: Settings) -> list[Problem]:
    """The draft's own problems, named by the real file names and, where known, the line."""
    own = scratch.paths.rules / f"{draft.name}.toml"
    result = []
    for problem in loaded.problems:
        if problem.file != own:
            continue
        message = problem.message.replace(str(scratch.paths.templates) + os.sep, "")
        line = _line_of(draft.rule_text, problem.field, message)
        result.append(Problem(f"{draft.name}.toml", line, problem.field, message))
    return result


def _caused(settings: Settings, loaded: RuleSet, draft: Draft, scratch: Settings) -> list[Problem]:
    """Problems of other rule files that appear only with the draft in place."""
    own = scratch.paths.rules / f"{draft.name}.toml"
    others = [p for p in loaded.problems if p.file != own]
    if not others:
        return []

    def plain(message: str, folders: Settings) -> str:
        for folder in (folders.paths.rules, folders.paths.templates):
            message = message.replace(str(folder) + os.sep, "")
        return message

    before = {
        (p.file.name, p.field, plain(p.message, settings))
        for p in check_rules(settings).problems
        if p.file.name != f"{draft.name}.toml"
    }
    result = []
    for problem in others:
        message = plain(problem.message, scratch)
        if (problem.file.name, problem.field, message) in before:
            continue
        line = _line_of(draft.rule_text, problem.field, message)
        text = f"breaks {problem.file.name}: {message}"
        result.append(Problem(f"{draft.name}.toml", line, problem.field, text))
    return result


def _line_of(text: str, field_name: str | None, message: str) -> int | None:
    found = _TOML_LINE.search(message)
    if found:
        return int(found.group(1))
    if not field_name:
        return None
    key = re.split(r"[.\[]", field_name)[0]
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return None


def _split_top(text: str) -> tuple[str, str]:
    """The top-level keys, and the rest from the first `[section]` on."""
    found = re.search(r"^\s*\[", text, re.MULTILINE)
    if not found:
        return text, ""
    return text[: found.start()], text[found.start() :]


def _keep_previous(settings: Settings, path: Path, before: str, now: datetime) -> None:
    if not before:
        return
    kind = "rules" if path.parent == settings.paths.rules else "templates"
    history = settings.paths.rules.parent / HISTORY / kind
    history.mkdir(parents=True, exist_ok=True)
    (history / f"{path.name}.{now:%Y%m%dT%H%M%S%f}").write_text(before, encoding="utf-8")
