"""Static memory planning over the lowered program."""
from .plan import assign_buffers

__all__ = ["assign_buffers"]
