import Lean

/-!
# The `mvvm` simp set

Every definition of the model, the abstract semantics and the abstraction function is tagged
`@[mvvm]`, so `simp only [mvvm]` unfolds exactly the project's definitions and nothing else.
Registered here because a simp attribute cannot be used in the module that declares it.
-/

register_simp_attr mvvm
