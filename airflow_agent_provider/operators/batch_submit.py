"""
BatchSubmitOperator: render, reserve and submit the requests of one batch group.

Runs on a worker, once per group (see :mod:`airflow_agent_provider.factory.batch`), after every
member's upstreams. For each member (each ``for_each`` item of a mapped member):

1. **Render** its prompt and system prompt with the upstream results, exactly as the member would
   render them for a real-time call (same narrow workflow context, same ``results`` and
   ``upstream_text``), and build the same request.
2. **Skip** it when its ``condition`` is false or an upstream it needs has no result: the member's own
   task then skips (or fails) exactly as it would in real-time delivery.
3. **Reserve** its most possible cost at *batch* prices in every budget scope, before anything is
   sent. A member the budget cannot cover is not submitted; its own task fails with the budget
   message. Reservations live for the deadline plus an hour (a batch takes hours, not seconds).
4. **Submit** the reserved requests through the batch engine (split per provider limits), and keep
   the batch handles in ``task_state_store`` right after each batch is created: a retried or re-run
   submit task re-attaches to them and never submits the same request twice.

The return value (XCom) is the :class:`Manifest` that the members read. Batch submissions do not go
through the real-time rate limiter: the providers count batch requests against separate limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_agent_provider._connections import default_conn_id
from airflow_agent_provider.operators.batch_manifest import (
    Manifest,
    MemberEntry,
    custom_id_for,
    reservation_id_for,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Test hooks, each called with the manifest right after a batch was created and persisted (tests
#: fail the task there to prove that a retry re-attaches). Empty in production.
AFTER_SUBMIT: list[Callable[[Manifest], Any]] = []

#: Extra lifetime of a batch reservation past the deadline: results are read and settled after it ends.
RESERVATION_GRACE_S = 3600.0


class BatchSubmitOperator(BaseOperator):
    """
    Submit one batch group's requests (see the module docstring).

    :param members: ``[{"task_id", "items"?, "items_task"?}]``: the member agent tasks; ``items`` is a
        static ``for_each`` list, ``items_task`` the task computing an expression's list.
    :param provider: ``openai`` or ``anthropic``.
    :param llm_conn_id: The connection all members use.
    :param deadline: Seconds from submission after which unfinished requests are cancelled.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#fdf2d0"
    #: task_state_store key of the manifest. Renaming it breaks re-attaching in-flight retries.
    state_key: ClassVar[str] = "batch_submission"

    def __init__(
        self,
        *,
        members: list[dict[str, Any]],
        provider: str,
        llm_conn_id: str | None = None,
        deadline: float = 86400.0,
        trigger_rule: str = "all_done",
        **kwargs: Any,
    ) -> None:
        # all_done: each member decides from its own upstreams (read below) whether it is sent.
        super().__init__(trigger_rule=trigger_rule, **kwargs)
        self.members = [dict(m) for m in members]
        self.provider = provider
        self.llm_conn_id = llm_conn_id or default_conn_id(provider)
        self.deadline = float(deadline)

    # -- the run -----------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        store = context.get("task_state_store")
        manifest = self._stored(store)
        if manifest is None:
            manifest = self._plan(context)
            self._save(store, manifest)
        else:
            self.log.info(
                "Re-attaching to %d batch(es) of an earlier try %s; nothing is submitted twice",
                len(manifest.batches),
                [b.get("batch_id") for b in manifest.batches],
            )
        self._submit_reserved(context, manifest, store)
        self.log.info("Batch group %s: %s", self.task_id, manifest.counts())
        return manifest.to_dict()

    def _stored(self, store: Any) -> Manifest | None:
        if store is None:
            self.log.warning("task_state_store not available: a retry could not re-attach to its batch")
            return None
        data = store.get(self.state_key)
        return Manifest.from_dict(data) if data else None

    def _save(self, store: Any, manifest: Manifest) -> None:
        # Not swallowed: a batch whose id is not kept could be submitted again by a retry.
        if store is not None:
            store.set(self.state_key, manifest.to_dict())

    # -- planning: render, skip, reserve ------------------------------------------------------------

    def _plan(self, context: Context) -> Manifest:
        from airflow_agent_provider.operators import batch_render

        manifest = Manifest(self.provider, self.llm_conn_id, deadline_at=time.time() + self.deadline)
        rendered = batch_render.render_members(self, context)
        ti = context["ti"]
        for member in rendered:
            custom_id = custom_id_for(member.task_id, member.map_index)
            entry = MemberEntry(member.task_id, member.map_index, "skipped", custom_id, model=member.model)
            if member.skip_reason is not None:
                entry.reason = member.skip_reason
            else:
                entry.reservation_id = reservation_id_for(
                    ti.dag_id, context["run_id"], member.task_id, member.map_index
                )
                refusal = batch_render.reserve(member, entry, self.deadline + RESERVATION_GRACE_S)
                entry.status, entry.reason = ("refused", refusal) if refusal else ("reserved", None)
                if refusal:
                    self.log.warning("%s is not submitted: %s", entry.key, refusal)
            manifest.members.append(entry)
        self._requests = {
            custom_id_for(m.task_id, m.map_index): m.request for m in rendered if m.request is not None
        }
        return manifest

    # -- submission ---------------------------------------------------------------------------------

    def _submit_reserved(self, context: Context, manifest: Manifest, store: Any) -> None:
        reserved = [m for m in manifest.members if m.status == "reserved"]
        if not reserved:
            return
        requests = getattr(self, "_requests", None)
        if requests is None or any(m.custom_id not in requests for m in reserved):
            # A retry that planned before but did not submit everything: render again (the same
            # upstream results give the same requests); reservations are kept under the same ids.
            from airflow_agent_provider.operators import batch_render

            requests = {
                custom_id_for(m.task_id, m.map_index): m.request
                for m in batch_render.render_members(self, context)
                if m.request is not None
            }
        from airflow_agent_provider.operators import batch_io

        items = [(m.custom_id, requests[m.custom_id]) for m in reserved if m.custom_id in requests]
        by_custom_id = {m.custom_id: m for m in reserved}
        for handle in batch_io.iter_submit(self.llm_conn_id, self.provider, items):
            for custom_id in handle.custom_ids:
                entry = by_custom_id[custom_id]
                entry.status, entry.batch_id = "submitted", handle.batch_id
            manifest.batches.append(handle.to_dict())
            self._save(store, manifest)
            self.log.info("Submitted batch %s (%d request(s))", handle.batch_id, len(handle.custom_ids))
            for hook in list(AFTER_SUBMIT):
                hook(manifest)


__all__ = ["AFTER_SUBMIT", "BatchSubmitOperator"]
