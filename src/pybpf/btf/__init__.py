"""BTF: the BPF Type Format (types model, parsing, encoding, dumps, .BTF.ext)."""

from pybpf.btf.btf import Btf
from pybpf.btf.builder import BtfBuilder
from pybpf.btf.dedup import dedup
from pybpf.btf.types import *  # noqa: F403 - the model is the package's public surface
from pybpf.btf.types import BtfKind, BtfType

__all__ = ["Btf", "BtfBuilder", "BtfKind", "BtfType", "dedup"]
