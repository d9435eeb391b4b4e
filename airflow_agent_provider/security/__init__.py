"""
Trust boundaries: what keeps secrets out of text that leaves the provider (see ``redact``).

Light on purpose (standard library only): operators, triggers, the CLI and the plugin all import it.
"""
