"""
Small, deterministic ERP tools that example agents may call.

They read from in-memory sample data so the example workflows run anywhere, including in tests
where the local LLM server calls each offered tool with schema-generated arguments such as
``"example"``. An unknown id therefore returns a ``found: false`` record instead of raising: a tool
error would end the agent's run, while a "not found" answer is something a model can reason about.
Every function is typed and documented because the hook turns signature and docstring into the
tool schema the model sees.
"""

from __future__ import annotations

from typing import Any

_STOCK: dict[str, dict[str, Any]] = {
    "SKU-1001": {
        "description": "Steel bolts M8 (box of 100)",
        "on_hand": 1240,
        "reorder_point": 500,
        "unit_cost": 4.20,
    },
    "SKU-1002": {
        "description": "Hydraulic pump HP-20",
        "on_hand": 12,
        "reorder_point": 15,
        "unit_cost": 389.00,
    },
    "SKU-1003": {
        "description": "Safety gloves (pair)",
        "on_hand": 0,
        "reorder_point": 200,
        "unit_cost": 2.75,
    },
    "SKU-1004": {
        "description": "Pallet wrap 500 m",
        "on_hand": 310,
        "reorder_point": 100,
        "unit_cost": 18.50,
    },
}

_EMPLOYEES: dict[str, dict[str, Any]] = {
    "E-100": {
        "name": "Dana Weber",
        "department": "Finance",
        "role": "AP Clerk",
        "status": "active",
        "monthly_salary": 4200,
    },
    "E-101": {
        "name": "Luis Ortega",
        "department": "Finance",
        "role": "Controller",
        "status": "active",
        "monthly_salary": 7900,
    },
    "E-102": {
        "name": "Mei Tanaka",
        "department": "Inventory",
        "role": "Warehouse Lead",
        "status": "active",
        "monthly_salary": 3900,
    },
    "E-103": {
        "name": "Sam Okafor",
        "department": "HR",
        "role": "Payroll Specialist",
        "status": "leaver",
        "monthly_salary": 4100,
    },
}

_INVOICES: list[dict[str, Any]] = [
    {
        "invoice_id": "INV-5001",
        "vendor": "Acme Metals",
        "amount": 12450.00,
        "currency": "EUR",
        "due_date": "2026-02-10",
        "po_matched": True,
    },
    {
        "invoice_id": "INV-5002",
        "vendor": "Acme Metals",
        "amount": 980.00,
        "currency": "EUR",
        "due_date": "2026-01-28",
        "po_matched": False,
    },
    {
        "invoice_id": "INV-5003",
        "vendor": "Northwind Logistics",
        "amount": 3120.50,
        "currency": "EUR",
        "due_date": "2026-02-03",
        "po_matched": True,
    },
    {
        "invoice_id": "INV-5004",
        "vendor": "Globex Pumps",
        "amount": 7780.00,
        "currency": "USD",
        "due_date": "2026-01-31",
        "po_matched": False,
    },
]

_POLICIES: dict[str, dict[str, Any]] = {
    "SOD-01": {
        "title": "Segregation of duties: vendor master vs. payment release",
        "rule": "No user may both create vendors and release payments.",
        "severity": "high",
    },
    "FIN-07": {
        "title": "Invoice approval threshold",
        "rule": "Invoices above 10,000 EUR need a second approver.",
        "severity": "medium",
    },
    "INV-03": {
        "title": "Cycle count variance",
        "rule": "Stock variances above 2% of value must be investigated before close.",
        "severity": "medium",
    },
}


def get_stock_level(sku: str) -> dict[str, Any]:
    """Return on-hand quantity, reorder point and unit cost for a stock keeping unit (e.g. 'SKU-1002')."""
    key = str(sku).strip().upper()
    item = _STOCK.get(key)
    if item is None:
        return {"sku": key, "found": False, "known_skus": sorted(_STOCK)}
    return {"sku": key, "found": True, **item, "below_reorder_point": item["on_hand"] < item["reorder_point"]}


def lookup_employee(employee_id: str) -> dict[str, Any]:
    """Return name, department, role, employment status and monthly salary of an employee (e.g. 'E-101')."""
    key = str(employee_id).strip().upper()
    employee = _EMPLOYEES.get(key)
    if employee is None:
        return {"employee_id": key, "found": False}
    return {"employee_id": key, "found": True, **employee}


def get_open_invoices(vendor: str) -> list[dict[str, Any]]:
    """List unpaid invoices of a vendor (case-insensitive name, e.g. 'Acme Metals'); 'all' lists every vendor's."""
    wanted = str(vendor).strip().lower()
    if wanted == "all":
        return [dict(invoice) for invoice in _INVOICES]
    return [dict(invoice) for invoice in _INVOICES if invoice["vendor"].lower() == wanted]


def check_policy(policy_id: str) -> dict[str, Any]:
    """Return the title, rule text and severity of a compliance policy (e.g. 'SOD-01', 'FIN-07', 'INV-03')."""
    key = str(policy_id).strip().upper()
    policy = _POLICIES.get(key)
    if policy is None:
        return {"policy_id": key, "found": False, "known_policies": sorted(_POLICIES)}
    return {"policy_id": key, "found": True, **policy}
