"""Example code used by the example workflows in ``dags/workflows/``."""
