"""
The error hierarchy: one base for the provider, and the two bases the classifier and retry policy read.

Every public exception lives in ``exceptions.py`` and subclasses ``AgentProviderError``; whether
waiting helps is declared by ``TransientError``/``PermanentError``, not sniffed from attributes.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction

from airflow_agent_provider import exceptions
from airflow_agent_provider.exceptions import (
    AgentProviderError,
    BudgetExceeded,
    CircuitOpenError,
    PermanentError,
    StoreUnavailable,
    TransientError,
)
from airflow_agent_provider.operators.retry_policy import AgentRetryPolicy
from airflow_agent_provider.resilience.classify import classify

POLICY = AgentRetryPolicy(base_delay=10, max_delay=60, jitter=False)

#: The Airflow-free engines: importing them needs no Airflow, so every module can be scanned.
ENGINES = (
    "definitions",
    "limits",
    "cost",
    "resilience",
    "guard",
    "stores",
    "llm",
    "security",
    "results",
    "agent_loop",
)


def _public_exceptions():
    return [getattr(exceptions, name) for name in exceptions.__all__]


def test_every_public_exception_subclasses_the_provider_base():
    classes = _public_exceptions()
    assert classes
    for cls in classes:
        assert issubclass(cls, BaseException), cls
        assert issubclass(cls, AgentProviderError), cls


def test_all_lists_every_exception_of_the_module():
    defined = {
        name
        for name, value in vars(exceptions).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == exceptions.__name__
        and not name.startswith("_")
    }
    assert defined == set(exceptions.__all__)


def test_no_public_exception_is_defined_outside_the_exceptions_module():
    outside = []
    for package in ENGINES:
        root = importlib.import_module(f"airflow_agent_provider.{package}")
        names = [root.__name__] + [
            info.name for info in pkgutil.walk_packages(root.__path__, prefix=f"{root.__name__}.")
        ]
        for name in names:
            module = importlib.import_module(name)
            for attr, value in vars(module).items():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == module.__name__
                    and not attr.startswith("_")
                ):
                    outside.append(f"{module.__name__}.{attr}")
    assert outside == []


class _QuotaBlip(TransientError):
    reason = "quota_blip"
    retry_after_s = 12.0


class _BadSetup(PermanentError):
    reason = "bad_setup"


@pytest.mark.parametrize(
    ("exc", "kind", "reason", "retry_after"),
    [
        (_QuotaBlip("blip"), "transient", "quota_blip", 12.0),
        (StoreUnavailable("redis is down"), "transient", None, None),
        (CircuitOpenError("openai/gpt-4o-mini", 30.0), "transient", None, 30.0),
        (_BadSetup("wrong"), "permanent", "bad_setup", None),
        (BudgetExceeded("dag:erp", 1.0, 1.0, 0.0, 0.1), "permanent", None, None),
    ],
)
def test_the_classifier_reads_the_declared_kind(exc, kind, reason, retry_after):
    info = classify(exc)
    assert info.kind == kind
    assert info.classified
    assert info.transient is (kind == "transient")
    assert info.permanent is (kind == "permanent")
    assert exc.transient is info.transient
    assert exc.permanent is info.permanent
    if reason is not None:
        assert info.reason == reason
    if retry_after is not None:
        assert info.retry_after_s == pytest.approx(retry_after)


def test_the_retry_policy_reads_the_same_bases():
    transient = POLICY.evaluate(_QuotaBlip("blip"), try_number=1, max_tries=3)
    assert transient.action == RetryAction.RETRY
    permanent = POLICY.evaluate(_BadSetup("wrong"), try_number=1, max_tries=3)
    assert permanent.action == RetryAction.FAIL
    assert permanent.reason.startswith("permanent model error")


def test_an_error_that_declares_nothing_is_unclassified():
    info = classify(RuntimeError("a bug"))
    assert info.kind == "permanent"
    assert not info.classified
