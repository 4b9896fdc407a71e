/*
 * Guest-memory bounds checks of the MicroVMM shim.
 *
 * Kept in their own translation unit, free of system headers beyond <stdint.h>, so that
 * Frama-C/WP proves their ACSL contracts on exactly the code the shim links. The contracts are
 * the C side of the axioms in MicroVMM/FFI/Shim.lean (see spec/ffi_contract.yaml).
 */
#ifndef MVBOUNDS_H
#define MVBOUNDS_H

#include <stdint.h>

/** errno value (EFAULT) returned negated by the checks. */
#define MV_EFAULT 14

/*@ assigns \nothing;
    ensures in_ram:  \result == 0 <==> gpa + len <= mem_size;
    ensures outside: \result != 0 ==> \result == -MV_EFAULT;
*/
int mv_range_check(uint64_t mem_size, uint64_t gpa, uint64_t len);

#endif
