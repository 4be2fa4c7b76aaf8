"""Attribute guards for the user-facing objects: a misspelt setting must fail, not vanish.

``prog.auto_load = False`` on a plain Python object creates a new attribute and the program
loads anyway; libbpf's C API cannot have that bug (the setter would not compile), so the
Python objects refuse unknown public attributes instead, naming the closest known one.
Private names (``_cache``) stay free for the implementation; public instance attributes are
declared per class in ``_PUBLIC_FIELDS``.  Properties, methods and declared fields are the
known names.
"""

from __future__ import annotations


def _known_names(cls: type) -> list[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        names.update(n for n in vars(klass) if not n.startswith("_"))
        names.update(getattr(klass, "_PUBLIC_FIELDS", ()))
    return sorted(names)


def unknown_attribute(obj: object, name: str) -> AttributeError:
    """The error for ``obj.name`` when the class has no such attribute, with a suggestion."""
    # difflib only matters once a name is wrong; keep it off the import path.
    import difflib

    cls = type(obj).__name__
    close = difflib.get_close_matches(name, _known_names(type(obj)), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return AttributeError(f"'{cls}' object has no attribute '{name}'{hint}")


class StrictAttributes:
    """Mixin: setting or reading an unknown public attribute raises :class:`AttributeError`."""

    __slots__ = ()
    _PUBLIC_FIELDS: frozenset[str] = frozenset()
    """Public names set on instances (not properties); everything else public is refused."""

    def __setattr__(self, name: str, value: object) -> None:
        if name.startswith("_") or name in self._PUBLIC_FIELDS or hasattr(type(self), name):
            object.__setattr__(self, name, value)
            return
        raise unknown_attribute(self, name)

    def __getattr__(self, name: str) -> object:
        # Only reached when normal lookup failed: dunder probes (copy, pickle) and names the
        # class defines (a property whose getter raised AttributeError) keep the plain error.
        if name.startswith("__") or hasattr(type(self), name):
            raise AttributeError(name)
        raise unknown_attribute(self, name)
