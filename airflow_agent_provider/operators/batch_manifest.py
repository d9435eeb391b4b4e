"""
What a batch submit task decided for each member, as it is kept and handed on.

The submit task writes a :class:`Manifest` to its ``task_state_store`` (before and after each batch
it creates, so a retry re-attaches instead of submitting again) and returns it as its XCom, where
every member agent reads its own :class:`MemberEntry`: its ``custom_id``, batch, budget reservation
and deadline, or why it was not submitted (the budget message of a refused member).

Airflow-free and JSON round-trippable, so the same record is read on workers and in the triggerer.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: ``submitted``: in a batch; ``reserved``: budget held, not yet in a batch (a retry submits it);
#: ``refused``: the budget could not cover it, never sent; ``skipped``: its condition was false or an
#: upstream it needs has no result, so its own task skips or fails as in real-time delivery.
MemberStatus = Literal["submitted", "reserved", "refused", "skipped"]

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_CUSTOM_ID = 64


def member_key(task_id: str, map_index: int) -> str:
    """``Module.agent`` or ``Module.agent[3]`` for a ``for_each`` item."""
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


def custom_id_for(task_id: str, map_index: int = -1, attempt: int = 0) -> str:
    """
    The request's ``custom_id``: readable (``Finance-close_3``), unique per member and attempt, and
    within both providers' rule (``^[a-zA-Z0-9_-]{1,64}$``). Attempt 0 is the group's submission;
    a member's own resubmission on retry ``n`` ends in ``-r<n>``, so its result is never mistaken
    for the first request's.
    """
    text = _UNSAFE_ID.sub("-", task_id)
    if map_index >= 0:
        text += f"_{map_index}"
    if attempt:
        text += f"-r{attempt}"
    if len(text) > _MAX_CUSTOM_ID:
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        text = f"{text[: _MAX_CUSTOM_ID - 13]}-{digest}"
    return text


def reservation_id_for(dag_id: str, run_id: str, task_id: str, map_index: int, attempt: int = 0) -> str:
    """The budget reservation (and ledger entry) id of one batch request: one charge per request."""
    suffix = "batch" if not attempt else f"batch-r{attempt}"
    return f"{dag_id}/{run_id}/{task_id}/{map_index}/{suffix}"


@dataclass
class MemberEntry:
    """One member request of a batch group."""

    task_id: str
    map_index: int
    status: MemberStatus
    custom_id: str
    model: str = ""
    reservation_id: str | None = None
    #: USD held for the request at batch prices (None: unpriced and unbudgeted).
    amount_usd: float | None = None
    #: When the reservation was made (epoch seconds): decides the ledger's day and month.
    reserved_at: float | None = None
    batch_id: str | None = None
    reason: str | None = None

    @property
    def key(self) -> str:
        return member_key(self.task_id, self.map_index)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemberEntry:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Manifest:
    """A submit task's decisions: every member's entry and the batches (``BatchHandle`` dicts)."""

    provider: str
    llm_conn_id: str
    #: Epoch seconds after which the batches are cancelled and unfinished requests fail.
    deadline_at: float
    members: list[MemberEntry] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)

    def entry(self, task_id: str, map_index: int) -> MemberEntry | None:
        key = member_key(task_id, map_index)
        return next((m for m in self.members if m.key == key), None)

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        return next((b for b in self.batches if b.get("batch_id") == batch_id), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "llm_conn_id": self.llm_conn_id,
            "deadline_at": self.deadline_at,
            "members": [m.to_dict() for m in self.members],
            "batches": list(self.batches),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            provider=str(data["provider"]),
            llm_conn_id=str(data["llm_conn_id"]),
            deadline_at=float(data["deadline_at"]),
            members=[MemberEntry.from_dict(m) for m in data.get("members") or []],
            batches=[dict(b) for b in data.get("batches") or []],
        )

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for member in self.members:
            out[member.status] = out.get(member.status, 0) + 1
        return out


__all__ = [
    "Manifest",
    "MemberEntry",
    "MemberStatus",
    "custom_id_for",
    "member_key",
    "reservation_id_for",
]
