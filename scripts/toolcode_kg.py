"""Loaded by the Kernel Gateway that ``scripts/gateway.py`` starts (never by the proxy).

jupyter_server never sets TCP_NODELAY on the kernel WebSocket, so Nagle plus the client's
delayed ACK hold each execute's last frames ~40 ms (docs/gateway.md). This connection class
turns Nagle off as each kernel's channels open.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.services.kernels.connection.channels import (  # type: ignore[import-not-found]
    ZMQChannelsWebsocketConnection,
)


class NoDelayConnection(ZMQChannelsWebsocketConnection):  # type: ignore[misc]
    def connect(self) -> Any:
        self.websocket_handler.set_nodelay(True)
        return super().connect()
