/*
 * Entry of every freestanding guest. The VMM enters here in 64-bit long mode with identity
 * paging for [0, 4 GiB), interrupts off and RSP = FREESTANDING_STACK_TOP (see
 * py/mvtool/vmm/freestanding.py). Zero .bss (a flat binary does not carry it), call main(),
 * and report its return value on the debug-exit port.
 */
#include "platform.h"

    .section .text.start, "ax"
    .code64
    .globl _start
_start:
    cld
    mov $FREESTANDING_STACK_TOP, %rsp
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    rep stosb
    call main
    mov %eax, %edi
    call fs_exit
1:  hlt
    jmp 1b

    .section .note.GNU-stack, "", @progbits
