import MicroVMM.Tactic
import MicroVMM.Model.Invariant
import MicroVMM.Spec.Lifecycle
import MicroVMM.Refinement.Abstraction
import MicroVMM.Obligations
