"""
Input-token estimate used before a call, when the real count is not known yet.

Why a heuristic and not a tokenizer: the estimate only sizes a budget reservation, the real usage
settles it. About four characters per token holds for English and JSON with the OpenAI and
Anthropic tokenizers; rounding up keeps a short prompt from being estimated at zero. A prompt in a
language that tokenizes more densely can exceed the estimate; settlement then records the truth.
"""

from __future__ import annotations

import math

#: Characters per token assumed by the estimate.
CHARS_PER_TOKEN = 4


def estimate_input_tokens(messages_chars: int) -> int:
    """``ceil(messages_chars / 4)``; never negative."""
    return math.ceil(max(messages_chars, 0) / CHARS_PER_TOKEN)
