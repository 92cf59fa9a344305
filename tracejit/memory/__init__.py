"""Static memory planning over the lowered program."""
from .plan import MemoryAnalysis, assign_buffers, liveness, memory_analysis

__all__ = ["assign_buffers", "liveness", "memory_analysis", "MemoryAnalysis"]
