"""uvicorn's HTTP protocol with TCP_NODELAY on every connection.

With --workers N, uvicorn binds its listening socket without IPPROTO_TCP, so asyncio does not turn
Nagle's algorithm off for the connections it accepts; an answer written in two parts (head, then
body) then waits for the client's delayed ACK, about 40 ms per request on Linux. `run` passes
`--http uvicorn_nodelay:H11NoDelayProtocol` so that every worker count behaves like one worker.
"""

import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class H11NoDelayProtocol(H11Protocol):
    def connection_made(self, transport):
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
