/*
 * Guest-memory bounds checks; contracts in mvbounds.h, proved with Frama-C/WP
 * (tests/test_ffi_contract.py runs the proof).
 */
#include "mvbounds.h"

int mv_range_check(uint64_t mem_size, uint64_t gpa, uint64_t len)
{
    if (gpa > mem_size)
        return -MV_EFAULT;
    /* A subtraction, so that gpa + len can never wrap around. */
    if (len > mem_size - gpa)
        return -MV_EFAULT;
    return 0;
}
