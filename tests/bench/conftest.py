from __future__ import annotations

import asyncio
import threading

import pytest
from aiohttp import web

from pdgen.bench.mock import MockConfig, create_app


class MockServer:
    """The mock OpenAI server on a loopback port, in a thread with its own event loop, so
    code that calls asyncio.run() (the CLI) can talk to it."""

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(create_app(self.config))
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def mock_server():
    servers = []

    def start(**kw) -> MockServer:
        server = MockServer(MockConfig(**kw))
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()
