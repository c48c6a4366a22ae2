"""Sourcing profiles: versioned weights and constraints, one active at a time, with rollback.

A profile is what the decision API decides with: the scorer's :class:`~agents.sourcing.SourcingWeights`
and the constraints a decision honours (candidate nodes, carriers left out, whether an order may
be split). Versions are immutable (a change is a new version), so every logged decision names the
exact weights behind it. ``activate`` appends to the activation history; ``rollback`` returns to
whatever was active before the current activation (again and again, walking back).

Before anything is stored or activated, the built-in ``default`` v0 (the scorer's defaults, no
constraints) is the active profile. What this module must never do: edit a stored version, or
decide anything itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from agents.sourcing import SourcingWeights
from core import changes
from core.clock import Clock, SystemClock
from core.db import Database
from core.db.tables_sourcing import SourcingProfileActivationRow, SourcingProfileRow
from core.errors import NotFound, ValidationFailed

DEFAULT_NAME = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class ProfileConstraints(BaseModel):
    """What a decision under this profile may use, beyond the weights."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nodes: tuple[str, ...] | None = Field(default=None, description="Candidate nodes; None: every node.")
    exclude_carriers: tuple[str, ...] = Field(default=(), description="Carriers never chosen.")
    allow_split: bool = Field(default=True, description="Split over two nodes when none can serve it whole.")


class Profile(BaseModel):
    """One version of a named profile."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    weights: SourcingWeights = Field(default_factory=SourcingWeights)
    constraints: ProfileConstraints = Field(default_factory=ProfileConstraints)
    note: str = ""
    created_at: datetime | None = None
    created_by: str = "built-in"

    @property
    def label(self) -> str:
        return f"{self.name}@v{self.version}"


BUILTIN_DEFAULT = Profile(name=DEFAULT_NAME, version=0, note="the scorer's defaults")


class ActiveProfile(BaseModel):
    """The profile in force and the activation that made it so (None: nothing activated yet)."""

    profile: Profile
    activation_id: int | None = None
    action: str = "built-in"
    at: datetime | None = None
    by: str = ""


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


def _from_row(row: SourcingProfileRow) -> Profile:
    return Profile(
        name=row.name,
        version=row.version,
        weights=SourcingWeights.model_validate(row.weights),
        constraints=ProfileConstraints.model_validate(row.constraints),
        note=row.note,
        created_at=row.created_at.replace(tzinfo=UTC),
        created_by=row.created_by,
    )


@dataclass(frozen=True)
class ProfileStore:
    """Profiles in the database ``db`` (the ``sourcing_profiles*`` tables)."""

    db: Database
    clock: Clock = field(default_factory=SystemClock)

    def create(
        self,
        name: str,
        weights: SourcingWeights,
        constraints: ProfileConstraints | None = None,
        *,
        note: str = "",
        by: str,
    ) -> Profile:
        """Store the next version of ``name`` (1 for a new name); nothing is activated."""
        if not _NAME.match(name):
            raise ValidationFailed(f"profile name {name!r} must match {_NAME.pattern}")
        with self.db.begin() as s:
            last = s.scalar(select(func.max(SourcingProfileRow.version)).where(SourcingProfileRow.name == name))
            row = SourcingProfileRow(
                name=name,
                version=(last or 0) + 1,
                weights=weights.model_dump(mode="json"),
                constraints=(constraints or ProfileConstraints()).model_dump(mode="json"),
                note=note,
                created_at=_naive(self.clock.now()),
                created_by=by,
            )
            s.add(row)
        return _from_row(row)

    def get(self, name: str, version: int | None = None) -> Profile:
        """``name`` at ``version`` (its newest when None); ``default`` v0 is the built-in."""
        if name == DEFAULT_NAME and version == 0:
            return BUILTIN_DEFAULT
        with self.db.sessions() as s:
            q = select(SourcingProfileRow).where(SourcingProfileRow.name == name)
            q = q.where(SourcingProfileRow.version == version) if version is not None else q
            row = s.scalars(q.order_by(SourcingProfileRow.version.desc()).limit(1)).first()
        if row is None:
            if name == DEFAULT_NAME and version is None:
                return BUILTIN_DEFAULT
            raise NotFound("sourcing profile", name if version is None else f"{name}@v{version}")
        return _from_row(row)

    def list(self) -> list[Profile]:
        """Every stored version, by name then version (the built-in default first)."""
        with self.db.sessions() as s:
            rows = s.scalars(select(SourcingProfileRow).order_by(SourcingProfileRow.name, SourcingProfileRow.version))
            return [BUILTIN_DEFAULT, *(_from_row(r) for r in rows)]

    def _latest_activation(self) -> SourcingProfileActivationRow | None:
        with self.db.sessions() as s:
            q = select(SourcingProfileActivationRow).order_by(SourcingProfileActivationRow.id.desc()).limit(1)
            return s.scalars(q).first()

    def active(self) -> ActiveProfile:
        """The profile decisions use now."""
        row = self._latest_activation()
        if row is None:
            return ActiveProfile(profile=BUILTIN_DEFAULT)
        return ActiveProfile(
            profile=self.get(row.name, row.version),
            activation_id=row.id,
            action=row.action,
            at=row.at.replace(tzinfo=UTC),
            by=row.by,
        )

    def activation_token(self) -> int:
        """The newest activation's id (0: none): changes exactly when the active profile may have."""
        with self.db.sessions() as s:
            return int(s.scalar(select(func.max(SourcingProfileActivationRow.id))) or 0)

    def activate(self, name: str, version: int | None = None, *, by: str) -> ActiveProfile:
        """Make ``name`` (at ``version``, default its newest) the active profile."""
        profile = self.get(name, version)
        current = self._latest_activation()
        self._append(profile.name, profile.version, current.id if current else None, "activate", by)
        return self.active()

    def rollback(self, *, by: str) -> ActiveProfile:
        """Return to the profile that was active before the current activation."""
        current = self._latest_activation()
        if current is None:
            raise ValidationFailed("no profile was ever activated: nothing to roll back")
        if current.previous_id is None:
            self._append(DEFAULT_NAME, 0, None, "rollback", by)
            return self.active()
        with self.db.sessions() as s:
            prev = s.get(SourcingProfileActivationRow, current.previous_id)
        if prev is None:  # pragma: no cover - rows are never deleted
            raise NotFound("profile activation", current.previous_id)
        self._append(prev.name, prev.version, prev.previous_id, "rollback", by)
        return self.active()

    def _append(self, name: str, version: int, previous_id: int | None, action: str, by: str) -> None:
        with self.db.begin() as s:
            s.add(
                SourcingProfileActivationRow(
                    name=name,
                    version=version,
                    previous_id=previous_id,
                    action=action,
                    at=_naive(self.clock.now()),
                    by=by,
                )
            )
        changes.publish(changes.SOURCING)
