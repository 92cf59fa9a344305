"""Layouts as index maps: views become index arithmetic, not copies."""
from .indexing import IndexMap

__all__ = ["IndexMap"]
