"""The example ERP tools are deterministic and never raise on arguments a model (or test server) invents."""

from __future__ import annotations

import inspect

import pytest

from airflow_agent_provider.examples import erp_tools

TOOLS = [
    erp_tools.get_stock_level,
    erp_tools.lookup_employee,
    erp_tools.get_open_invoices,
    erp_tools.check_policy,
]


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.__name__)
def test_tools_are_typed_documented_and_tolerate_schema_generated_arguments(tool):
    signature = inspect.signature(tool)
    assert tool.__doc__
    assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values())
    for value in ("example", 1):
        result = tool(value)
        assert result == tool(value)  # deterministic
        assert isinstance(result, (dict, list))


def test_known_records_are_found():
    assert erp_tools.get_stock_level("sku-1002")["below_reorder_point"] is True
    assert erp_tools.lookup_employee("E-103")["status"] == "leaver"
    assert {i["invoice_id"] for i in erp_tools.get_open_invoices("acme metals")} == {"INV-5001", "INV-5002"}
    assert erp_tools.check_policy("SOD-01")["found"] is True
    assert erp_tools.get_stock_level("example")["found"] is False
