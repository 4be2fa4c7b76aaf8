"""asyncio integration: waiting for a reader's epoll descriptor on the running loop.

A reader's epoll set is itself a pollable descriptor, so one ``loop.add_reader`` on it covers
every ring of the reader (and the close() eventfd inside it).  Nothing blocks the loop: the
consume passes that follow are the same non-blocking loops the synchronous API runs.
"""

from __future__ import annotations

import asyncio


async def wait_readable(fd: int, timeout: float | None) -> bool:
    """Wait until ``fd`` is readable on the running loop; False on timeout."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        if timeout is None:
            await ready
        else:
            await asyncio.wait_for(ready, timeout)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
    return True
