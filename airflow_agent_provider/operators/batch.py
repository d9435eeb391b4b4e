"""
BatchAgentOperator: one ``delivery: batch`` agent, answered through its group's provider batch.

The agent is still its own task with its own result, state, cost and retries; only how its model
call travels differs from :class:`LLMAgentOperator`:

1. It runs after its group's submit task (:class:`BatchSubmitOperator`) and reads its entry of the
   submit task's manifest: a member the budget could not cover fails here with the budget message
   (never retried: the same budget refuses again), one that was submitted defers.
2. It waits in the triggerer (:class:`~airflow_agent_provider.triggers.batch.BatchTrigger`, one
   shared poll per batch), holding no worker slot.
3. Back on a worker it settles its own charge from the result's usage at the batch price (the
   reservation id is per request, so settling twice charges once), validates the answer as a
   real-time agent would, and returns the same result record plus ``delivery: "batch"`` and the
   ``batch_id``.

A request that errored, expired or was cancelled releases its reservation and fails only this
agent, as transient or permanent as the error is. Its retry (per its ``retries:``) does not read
the group's batch again: it resubmits its own request as a batch of one, or, with
``batch_fallback: realtime`` when less than half the deadline is left or the batch expired, makes
the call in real time. A retry after anything else (a worker that died while deferred) re-attaches
to the request it already has. Either way the attempt is kept in ``task_state_store``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from airflow.sdk.exceptions import AirflowFailException

from airflow_agent_provider.operators.agent import LLMAgentOperator
from airflow_agent_provider.operators.batch_manifest import Manifest, MemberEntry

if TYPE_CHECKING:
    from airflow.sdk import Context


#: Test hooks, each called with the operator and its entry right after its request was settled (tests
#: fail the task there to prove that a retry re-attaches and charges nothing again). Empty in production.
AFTER_SETTLE: list[Any] = []


class BatchAgentOperator(LLMAgentOperator):
    """
    An LLM agent whose single model call goes through the provider's batch API (module docstring).

    :param batch_task_id: The group's submit task.
    :param deadline: Seconds a request may wait for its answer (at most the providers' 24 h).
    :param batch_fallback: ``batch`` (a retry resubmits as a batch of one) or ``realtime``.
    """

    ui_color = "#fff4e0"
    #: task_state_store key of this agent's own request (a retry's resubmission, or a failed attempt).
    batch_state_key: ClassVar[str] = "batch_request"

    def __init__(
        self,
        *,
        batch_task_id: str,
        deadline: float = 86400.0,
        batch_fallback: str = "batch",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.tools or self.repeat_until:
            raise ValueError(
                f"agent {self.task_id!r}: batch delivery is one model call per request; tools and "
                "repeat_until need a call after each answer (use delivery: realtime)"
            )
        self.batch_task_id = batch_task_id
        self.deadline = float(deadline)
        self.batch_fallback = batch_fallback

    # -- start: read the manifest, defer ----------------------------------------------------------

    def _execute(self, context: Context) -> dict[str, Any]:
        from airflow_agent_provider.agent_loop.config import check_output_schema

        self._check_critical_upstreams(context)
        self._check_condition(context)
        check_output_schema(self.output_schema)
        manifest, entry = self._manifest_entry(context)
        if entry.status == "refused":
            raise AirflowFailException(f"agent {self.task_id} was not submitted: {entry.reason}")
        own = self._own_state(context)
        if own.get("current"):  # a request of this agent's own (a resubmission): re-attach to it
            current = MemberEntry.from_dict(own["current"])
            return self._wait(context, current, own["handle"], manifest, own.get("deadline_at"))
        if entry.status != "submitted" or not entry.batch_id:
            raise AirflowFailException(
                f"agent {self.task_id} has no batch request: {entry.reason or entry.status} "
                f"(submit task {self.batch_task_id})"
            )
        if entry.custom_id not in own.get("failed", []):
            handle = manifest.batch(entry.batch_id)
            if handle is None:
                raise AirflowFailException(
                    f"batch {entry.batch_id} is not in the manifest of {self.batch_task_id}"
                )
            return self._wait(context, entry, handle, manifest, manifest.deadline_at)
        # This agent's request in the group's batch failed on an earlier try: send it again.
        from airflow_agent_provider.operators import batch_retry

        if batch_retry.goes_realtime(self, manifest, own):
            self.log.info("Retrying in real time: the batch deadline is near or passed")
            return self._realtime(context)
        resubmitted = batch_retry.resubmit(self, context, manifest, own)
        return self._wait(context, resubmitted.entry, resubmitted.handle, manifest, resubmitted.deadline_at)

    def _manifest_entry(self, context: Context) -> tuple[Manifest, MemberEntry]:
        from airflow_agent_provider.operators.control_flow import decode_agent_xcom

        data = decode_agent_xcom(context["ti"].xcom_pull(task_ids=self.batch_task_id))
        if not isinstance(data, dict):
            raise AirflowFailException(f"batch submit task {self.batch_task_id} left no manifest")
        manifest = Manifest.from_dict(data)
        map_index = self._map_index(context)
        entry = manifest.entry(self.task_id, map_index)
        if entry is None:
            raise AirflowFailException(
                f"agent {self.task_id} (map index {map_index}) is not in the manifest of {self.batch_task_id}"
            )
        return manifest, entry

    @staticmethod
    def _map_index(context: Context) -> int:
        index = getattr(context["ti"], "map_index", -1)
        return -1 if index is None else int(index)

    def _own_state(self, context: Context) -> dict[str, Any]:
        store = context.get("task_state_store")
        if store is None:
            return {}
        try:
            stored = store.get(self.batch_state_key)
            return dict(stored) if isinstance(stored, dict) else {}
        except Exception as exc:
            self.log.warning("Could not read this agent's batch state: %s", exc)
            return {}

    def _save_own(self, context: Context, state: dict[str, Any]) -> None:
        store = context.get("task_state_store")
        if store is not None:
            store.set(self.batch_state_key, state)

    def _wait(
        self,
        context: Context,
        entry: MemberEntry,
        handle: dict[str, Any],
        manifest: Manifest,
        deadline_at: float | None,
    ) -> NoReturn:
        from airflow_agent_provider.config import get_option
        from airflow_agent_provider.triggers.batch import BatchTrigger

        interval = float(get_option("batch_poll_interval", "30"))
        own = self._own_state(context)
        own["waiting"] = entry.to_dict()
        self._save_own(context, own)
        self.log.info("Waiting in the triggerer for request %s of batch %s", entry.custom_id, entry.batch_id)
        self.defer(
            trigger=BatchTrigger(
                llm_conn_id=manifest.llm_conn_id,
                handle=handle,
                custom_id=entry.custom_id,
                poll_interval=interval,
                max_poll_interval=max(interval, float(get_option("batch_max_poll_interval", "300"))),
                deadline_at=deadline_at if deadline_at is not None else manifest.deadline_at,
            ),
            method_name="execute_complete",
            kwargs={"state": {"entry": entry.to_dict()}},
        )

    def _realtime(self, context: Context) -> dict[str, Any]:
        """The real-time path of :class:`LLMAgentOperator` (its guarded pipeline, limits and all)."""
        self.execution_mode = "worker"
        return self._continue(context, self._load(context))

    # -- end: settle, record, finish ----------------------------------------------------------------

    def execute_complete(
        self, context: Context, event: Any = None, state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return self._guarded(context, self._batch_complete, context, event, state)

    def _batch_complete(self, context: Context, event: Any, state: dict[str, Any] | None) -> dict[str, Any]:
        from airflow_agent_provider.operators import batch_settle
        from airflow_agent_provider.resilience.classify import ClassifiedError

        if not isinstance(event, dict) or event.get("status") != "done":
            raise ClassifiedError.from_event(event if isinstance(event, dict) else {"message": repr(event)})
        # The entry travels in the defer kwargs; dag.test() passes only the event, and then it comes
        # from task_state_store, where _wait saved it just before deferring.
        held = (state or {}).get("entry") or self._own_state(context).get("waiting")
        if not held:
            raise AirflowFailException(f"agent {self.task_id}: resumed without its batch request entry")
        entry = MemberEntry.from_dict(held)
        outcome = event["outcome"]
        if outcome.get("kind") != "succeeded":
            batch_settle.release(entry)
            self._note_failed(context, entry, str(outcome.get("kind")))
            raise ClassifiedError.from_event(batch_settle.failure_event(outcome, entry))
        guarded = batch_settle.settle(self, context, entry, outcome)
        for hook in list(AFTER_SETTLE):
            hook(self, entry)
        try:
            return self._finish_batch(context, guarded, entry)
        except Exception:
            # Paid and settled, but not usable (an answer that does not match output_schema): the
            # retry must send the request again, not read the same answer.
            self._note_failed(context, entry, "invalid")
            raise

    def _note_failed(self, context: Context, entry: MemberEntry, kind: str) -> None:
        own = self._own_state(context)
        own["failed"] = sorted({*own.get("failed", []), entry.custom_id})
        own["last_kind"] = kind
        for key in ("current", "handle", "deadline_at", "waiting"):
            own.pop(key, None)
        self._save_own(context, own)

    def _finish_batch(self, context: Context, guarded: Any, entry: MemberEntry) -> dict[str, Any]:
        from airflow_agent_provider.agent_loop.drive import advance, record
        from airflow_agent_provider.operators import agent_runtime as rt

        loop = self._load(context)
        host = self._host(context)
        record(loop, host, guarded)
        if advance(loop, host) is not None:  # validates the answer (output_schema) like a real-time call
            raise AirflowFailException(f"agent {self.task_id}: a batch answer asked for another model call")
        result = loop.result(self._spec(), **rt.item_fields(context, self.item)).to_dict()
        result["delivery"] = "batch"
        result["batch_id"] = entry.batch_id
        rt.clear_state(context, self.state_key, self.log)
        rt.clear_state(context, self.batch_state_key, self.log)
        return rt.scrubbed_result(result)


__all__ = ["AFTER_SETTLE", "BatchAgentOperator"]
