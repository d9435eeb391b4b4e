"""
Light validation of a workflow's ``schedule`` string.

The DAG factory hands the string to Airflow unchanged; checking it here means a typo shows up in the
workflow's own error report (with its line) instead of as an opaque DAG import error.
"""

from __future__ import annotations

SCHEDULE_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly")


def check_schedule(value: str) -> str:
    """
    Return ``value`` stripped if it is a known preset or a 5-field cron expression.

    :raises ValueError: explaining the accepted forms.
    """
    text = value.strip()
    if text.startswith("@"):
        if text not in SCHEDULE_PRESETS:
            raise ValueError(
                f"unknown schedule preset {text!r} (allowed: {', '.join(SCHEDULE_PRESETS)} or null)"
            )
        return text
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"schedule {value!r} is not a cron expression with 5 fields "
            f"(minute hour day-of-month month day-of-week), a preset ({', '.join(SCHEDULE_PRESETS)}) or null"
        )
    if not _cron_is_valid(text):
        raise ValueError(f"schedule {value!r} is not a valid cron expression")
    return " ".join(fields)


def _cron_is_valid(expression: str) -> bool:
    try:
        from croniter import croniter
    except ImportError:  # croniter comes with Airflow; without it only the field count is checked
        return True
    return bool(croniter.is_valid(expression))
