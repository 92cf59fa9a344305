"""From HLO to kernels: the fusion planner, the kernel description, the
lowered program and the lowering that builds it."""
from .kernel import Kernel
from .lower import lower
from .plan import FusionPlan, fuse, plan_fusion
from .program import Program

__all__ = ["Kernel", "Program", "FusionPlan", "fuse", "plan_fusion", "lower"]
