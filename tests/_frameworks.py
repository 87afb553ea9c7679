"""What test_frameworks.py (scripted upstream) and test_frameworks_real.py (real model) share."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, field_validator


def ask(llm: Any, messages: Any, stream: bool) -> Any:
    """A LangChain chat model's answer, by ``invoke`` or by summing the ``stream`` chunks."""
    if not stream:
        return llm.invoke(messages)
    message = None
    for chunk in llm.stream(messages):
        message = chunk if message is None else message + chunk
    assert message is not None, "the stream sent no chunk"
    return message


# Instructor's response model. No docstring: Instructor would send it as the tool's description.
# The validator makes a name not in upper case fail, so that Instructor re-asks.
class UserInfo(BaseModel):
    name: str
    age: int

    @field_validator("name")
    @classmethod
    def name_is_upper_case(cls, value: str) -> str:
        if value != value.upper():
            raise ValueError("name must be in upper case, e.g. 'JASON'")
        return value
