"""Links: what keeps an attached program attached.

Every attachment pybpf makes is owned by a descriptor: a BPF link, a raw tracepoint, or a
perf event with the program set on it.  The program stays attached exactly as long as that
descriptor is open, so a :class:`Link` is a small owner object: ``detach()`` stops the
program now, ``close()`` releases the descriptors (which detaches too), both idempotent,
and a ``with`` block scopes an attachment.  An owner (a loaded program) tracks its links so
that closing the object detaches everything it attached.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterator

from pybpf.closing import Closing
from pybpf.errors import ENOTSUPP, KernelError
from pybpf.kernel.fd import Fd
from pybpf.kernel.links import link_detach

_DETACH_UNSUPPORTED = (errno.EOPNOTSUPP, errno.EINVAL, ENOTSUPP)


class Link(Closing):
    """An attachment of a program: ``kind`` (``tracepoint``, ``uprobe``...) and ``target``.

    ``fd`` is the BPF link (or raw tracepoint) descriptor, ``None`` for the legacy
    perf-event attachment, where ``perf_fd`` alone holds the program.
    """

    __slots__ = ("_on_close", "fd", "kind", "perf_fd", "target")

    def __init__(
        self,
        fd: Fd | None,
        *,
        kind: str,
        target: str,
        perf_fd: Fd | None = None,
        on_close: Callable[[Link], None] | None = None,
    ) -> None:
        self.fd = fd
        self.kind = kind
        self.target = target
        self.perf_fd = perf_fd
        self._on_close = on_close

    @property
    def closed(self) -> bool:
        return (self.fd is None or self.fd.closed) and (
            self.perf_fd is None or self.perf_fd.closed
        )

    def detach(self) -> None:
        """Stop the program from running at this attach point, now.

        Uses ``BPF_LINK_DETACH`` where the link type has it (the link object lingers,
        defunct, for whoever else holds it) and closes the descriptors in any case.
        """
        if self.fd is not None and not self.fd.closed:
            try:
                link_detach(self.fd)
            except KernelError as exc:
                if exc.errno not in _DETACH_UNSUPPORTED:
                    raise
        self.close()

    def close(self) -> None:
        """Release the descriptors (the kernel detaches with the last one); idempotent."""
        for fd in (self.fd, self.perf_fd):
            if fd is not None:
                fd.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close(self)

    def fileno(self) -> int:
        """The link descriptor (or the perf event's, for legacy attachments)."""
        fd = self.fd if self.fd is not None else self.perf_fd
        if fd is None:
            raise ValueError("link has no descriptor")
        return fd.fileno()


    def __repr__(self) -> str:
        state = "closed" if self.closed else "attached"
        return f"<Link {self.kind} {self.target} ({state})>"


class LinkSet:
    """The links of one owner, so that the owner's close detaches them all."""

    __slots__ = ("_links",)

    def __init__(self) -> None:
        self._links: list[Link] = []

    def add(self, link: Link) -> Link:
        link._on_close = self._forget
        self._links.append(link)
        return link

    def _forget(self, link: Link) -> None:
        with contextlib.suppress(ValueError):
            self._links.remove(link)

    def __iter__(self) -> Iterator[Link]:
        return iter(list(self._links))

    def __len__(self) -> int:
        return len(self._links)

    def close(self) -> None:
        for link in list(self._links):
            link.close()
