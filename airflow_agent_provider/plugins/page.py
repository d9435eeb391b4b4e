"""
The Operations page: one HTML document (three views) that reads the JSON endpoints next to it.

Why a page and not a React bundle: Airflow 3.3 shows a plugin's ``external_views`` in an iframe
(nav entry, a tab on every DAG and every DAG run) with ``{DAG_ID}``/``{RUN_ID}`` put into the URL
with ``encodeURIComponent``, so a plain page gets the same places in the UI as a ``react_apps``
bundle without a build step. It follows the Airflow UI's colour mode (the parent document's
``dark`` class, or the UI's ``theme`` entry in local storage, or the system setting) and uses
Airflow's state colours.

The views, chosen by the query string (so deep links work from inside and outside Airflow):
``?`` (fleet overview), ``?view=dag&dag_id=...`` (a workflow), ``?view=run&dag_id=...&run_id=...``
(a run). Charts are drawn by Chart.js (MIT, vendored in ``static/`` with its licence, served by
the app): the page loads nothing from elsewhere, so it works air-gapped. Inline script and style
carry a per-response nonce the Content-Security-Policy names; every value from the store goes
into the page with ``textContent``, never as HTML, so a DAG or model name cannot inject markup.
URLs are relative (``api/...``, ``../dags/...``), so the page works under any Airflow ``base_url``.
"""

from __future__ import annotations

import functools
import secrets
from pathlib import Path

TITLE = "LLM Agents: costs & limits"
CHART_JS = Path(__file__).with_name("static") / "chart.umd.min.js"
#: The page's HTML, script and style (package data next to Chart.js); ``__TITLE__``/``__NONCE__`` are filled in.
PAGE_HTML = Path(__file__).with_name("static") / "page.html"


@functools.cache
def _page() -> str:
    return PAGE_HTML.read_text(encoding="utf-8")


def render_page() -> tuple[str, str]:
    """The page and the nonce its inline script and style carry (for the CSP header)."""
    nonce = secrets.token_urlsafe(16)
    return _page().replace("__TITLE__", TITLE).replace("__NONCE__", nonce), nonce


__all__ = ["CHART_JS", "TITLE", "render_page"]
