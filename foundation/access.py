"""Who is acting, and what their role lets them do (issue 15).

Roles are checked where the change happens (the ledger, the version pointer, the job starter,
model registration, data import), not only by hiding buttons: a page or a script that calls the
core without the role gets a `AccessDenied` naming the role it needs. So this lives on the ground
floor, below every package that writes, and imports nothing of ours but the errors.

How an identity reaches the core: every writing function takes `actor: Identity | None = None`;
None means the local operator (`local_operator()`), which is what the command line and the app
without sign-in are. The UI passes the signed-in person explicitly; there is no hidden global.

Roles, each with everything the one before it may do:
  viewer      explore, explain, read reports
  annotator   + label decisions (corrections, flags, undo, importing corrections)
  maintainer  + retrain, promote, roll back, discard, register models, import data
  admin       + manage roles

The roles file (TOML, path in `WORKBENCH_ROLES`):

    default = "viewer"                 # everyone not named below
    [users]                            # e-mail address (signed in) or local operator name
    "alice@example.org" = "annotator"
    "bob" = "admin"                    # WORKBENCH_OPERATOR or the OS user, for the CLI
    [groups]                           # the provider's `groups` claim, where it sends one
    "ml-maintainers" = "maintainer"

A person named in several places gets the highest role that names them. Without a roles file the
workbench is a single-person tool: the local operator is admin, and a signed-in person (sign-in
configured but no roles file written yet) is a viewer, so turning sign-in on never hands write
access to everyone the provider knows.
"""
from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.errors import WorkbenchError

VIEWER, ANNOTATOR, MAINTAINER, ADMIN = "viewer", "annotator", "maintainer", "admin"
ROLES = (VIEWER, ANNOTATOR, MAINTAINER, ADMIN)  # lowest first
NO_FILE_SIGNED_IN_ROLE = VIEWER
ROLES_ENV, OPERATOR_ENV = "WORKBENCH_ROLES", "WORKBENCH_OPERATOR"

# What each action needs, and how the refusal names it ("... correcting labels needs ...").
LABEL, RETRAIN, PROMOTE, ROLLBACK, DISCARD, REGISTER_MODEL, IMPORT_DATA, MANAGE_ROLES = (
    "label", "retrain", "promote", "rollback", "discard", "register_model", "import_data", "manage_roles")
NEEDS: dict[str, tuple[str, str]] = {
    LABEL: (ANNOTATOR, "correcting labels"),
    RETRAIN: (MAINTAINER, "retraining a model"),
    PROMOTE: (MAINTAINER, "promoting a model version"),
    ROLLBACK: (MAINTAINER, "rolling back a model version"),
    DISCARD: (MAINTAINER, "discarding a model version"),
    REGISTER_MODEL: (MAINTAINER, "registering a model"),
    IMPORT_DATA: (MAINTAINER, "importing data"),
    MANAGE_ROLES: (ADMIN, "managing roles"),
}


class AccessDenied(WorkbenchError):
    """The actor's role does not allow the action; the message names the role it needs."""


def rank(role: str) -> int:
    return ROLES.index(role)


def _article(role: str) -> str:
    return "an" if role[0] in "aeiou" else "a"


@dataclass(frozen=True)
class Identity:
    """A person acting: signed in through the provider, or the local operator (signed_in=False)."""

    subject: str  # the provider's stable `sub`; for the local operator "local:<name>"
    email: str | None
    name: str
    role: str
    signed_in: bool
    groups: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise WorkbenchError(f"unknown role {self.role!r}; choose one of {', '.join(ROLES)}.")

    @property
    def label(self) -> str:
        """How the person is named in messages and records: the e-mail address, else the name."""
        return self.email or self.name

    def can(self, action: str) -> bool:
        return rank(self.role) >= rank(_needs(action)[0])

    def require(self, action: str) -> None:
        """Raise AccessDenied unless the role allows `action` (one of NEEDS)."""
        needed, doing = _needs(action)
        if rank(self.role) < rank(needed):
            raise AccessDenied(f"{self.label} is {_article(self.role)} {self.role}; {doing} needs the "
                               f"{needed} role. Ask an admin to change your role in the roles file.")

    def record(self) -> dict[str, Any]:
        """The fields stored with every change: who (subject, e-mail, name) and with which role."""
        return {"subject": self.subject, "email": self.email, "name": self.name, "role": self.role,
                "signed_in": self.signed_in}


def _needs(action: str) -> tuple[str, str]:
    try:
        return NEEDS[action]
    except KeyError:
        raise WorkbenchError(f"unknown action {action!r}; one of {', '.join(NEEDS)}.") from None


@dataclass(frozen=True)
class Roles:
    """A parsed roles file: users (e-mail or operator name, lower-cased) and groups to roles."""

    default: str = VIEWER
    users: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    def role_for(self, keys: Iterable[str | None], groups: Iterable[str] = ()) -> str:
        """The highest role any of `keys` (e-mail, name) or `groups` is given; else the default."""
        found = [self.users[key.strip().lower()] for key in keys if key and key.strip().lower() in self.users]
        found += [self.groups[group] for group in groups if group in self.groups]
        return max(found, key=rank) if found else self.default


def parse_roles(data: Mapping[str, Any], source: str = "the roles file") -> Roles:
    """Validate a roles table (see the module doc); WorkbenchError names the bad entry."""
    def role(value: Any, where: str) -> str:
        if value not in ROLES:
            raise WorkbenchError(f"{source}: {where} = {value!r} is not a role; use one of {', '.join(ROLES)}.")
        return value

    unknown = sorted(set(data) - {"default", "users", "groups"})
    if unknown:
        raise WorkbenchError(f"{source}: unknown key(s) {', '.join(unknown)}; use default, [users] and [groups].")
    tables = {}
    for name in ("users", "groups"):
        table = data.get(name, {})
        if not isinstance(table, Mapping):
            raise WorkbenchError(f"{source}: '{name}' must be a table ([{name}]).")
        tables[name] = {(key.strip().lower() if name == "users" else key): role(value, f"{name}.{key}")
                        for key, value in table.items()}
    return Roles(default=role(data.get("default", VIEWER), "default"), source=source, **tables)


def load_roles(path: str | Path | None = None) -> Roles | None:
    """The roles file at `path` (default: `WORKBENCH_ROLES`), or None when none is configured.

    Read on every call, so an admin's edit takes effect without a restart (the file is small).
    A configured path that is missing or broken is an error, never "no roles file": that would
    make the local operator admin.
    """
    path = path or os.environ.get(ROLES_ENV)
    if not path:
        return None
    path = Path(path).expanduser()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise WorkbenchError(f"the roles file {path} ({ROLES_ENV}) does not exist; create it or unset {ROLES_ENV}.") from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise WorkbenchError(f"the roles file {path} cannot be read: {error}.") from None
    return parse_roles(data, str(path))


def operator_name() -> str:
    """The local operator: `WORKBENCH_OPERATOR`, else the OS user."""
    name = os.environ.get(OPERATOR_ENV, "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def local_operator(roles: Roles | None = None) -> Identity:
    """The person at this machine (CLI, or the app without sign-in); admin when no roles file exists."""
    roles = roles if roles is not None else load_roles()
    name = operator_name()
    role = ADMIN if roles is None else roles.role_for([name])
    email = name if "@" in name else None
    return Identity(subject=f"local:{name}", email=email, name=name, role=role, signed_in=False)


def signed_in(subject: str, email: str | None, name: str | None, groups: Iterable[str] = (),
              roles: Roles | None = None) -> Identity:
    """A person the identity provider vouched for, with the role the roles file gives them."""
    roles = roles if roles is not None else load_roles()
    groups = tuple(str(group) for group in groups)
    role = NO_FILE_SIGNED_IN_ROLE if roles is None else roles.role_for([email], groups)
    return Identity(subject=str(subject), email=email or None, name=(name or email or str(subject)), role=role,
                    signed_in=True, groups=groups)


def identity_of(record: Mapping[str, Any] | None) -> Identity | None:
    """The Identity an `Identity.record()` describes (e.g. read back from a job's spec), or None."""
    if not record:
        return None
    return Identity(subject=str(record["subject"]), email=record.get("email"), name=str(record["name"]),
                    role=str(record["role"]), signed_in=bool(record.get("signed_in")))


def acting(actor: Identity | None, action: str) -> Identity:
    """The identity a core function acts as (the local operator when none is given), checked for `action`."""
    actor = actor if actor is not None else local_operator()
    actor.require(action)
    return actor
