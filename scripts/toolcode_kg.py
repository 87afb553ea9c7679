"""Loaded by the Kernel Gateway that ``scripts/gateway.py`` starts (never by the proxy).

Two changes to jupyter_server's kernel WebSocket:

- TCP_NODELAY: jupyter_server never sets it, so Nagle plus the client's delayed ACK hold each
  execute's last frames ~40 ms (docs/gateway.md).
- A message from the kernel that fails its HMAC check (or does not parse) raises inside the
  ZeroMQ stream's callback and every later message of the kernel is silently lost (the client
  would wait for a report that never comes). Close the kernel's channels with 1008 instead: the
  proxy then reports a broken message channel, as it does for its own kernels.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.kernels.connection.channels import (  # type: ignore[import-not-found]
    ZMQChannelsWebsocketConnection,
)

BAD_MESSAGE = 1008  # WebSocket "policy violation"


class Connection(ZMQChannelsWebsocketConnection):  # type: ignore[misc]
    """Bad kernel messages close the channels (for a measurement without the Nagle fix)."""

    def handle_outgoing_message(self, stream: str, outgoing_msg: list[Any]) -> None:
        try:
            super().handle_outgoing_message(stream, outgoing_msg)
        except Exception as exc:
            self.log.warning(
                "kernel %s sent a bad message (%s): closing its channels",
                self.kernel_id,
                type(exc).__name__,
            )
            self.websocket_handler.close(BAD_MESSAGE, "bad message from the kernel")


class NoDelayConnection(Connection):
    """What ``make gateway`` uses."""

    def connect(self) -> Any:
        self.websocket_handler.set_nodelay(True)
        return super().connect()
