"""From HLO to kernels: the kernel description, the lowered program, and
the lowering (fusion decisions live here)."""
from .kernel import Kernel
from .lower import lower
from .program import Program

__all__ = ["Kernel", "Program", "lower"]
