"""HLO: the traced program as SSA instructions, with its primitive table,
verifier, reference interpreter and passes."""
from .module import Aval, Instruction, Module
from .primitives import PRIMITIVES, FusionKind, Primitive, ShapeError
from .verifier import VerifierError, verify
from .interpreter import evaluate

__all__ = ["Aval", "Instruction", "Module", "PRIMITIVES", "FusionKind",
           "Primitive", "ShapeError", "VerifierError", "verify", "evaluate"]
