"""One context-manager protocol for everything pybpf hands out that holds kernel resources.

Descriptors, links, objects and event readers all release what they hold in an idempotent
``close()``; ``with`` is that call at the end of a block.  Defined once so they all behave alike.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self


class Closing:
    """Mixin: ``with x:`` calls ``x.close()`` on the way out, even on an exception."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
