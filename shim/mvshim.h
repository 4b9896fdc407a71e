/*
 * mvshim: the C side of the MicroVMM engine.
 *
 * A deliberately small layer over the KVM ioctl API: open /dev/kvm, create a VM and one vCPU,
 * one guest RAM slot at guest-physical 0, in-kernel irqchip and PIT, register access, KVM_RUN
 * with exits decoded into a flat struct, IRQ lines, and bounds-checked guest-memory accessors
 * (including file <-> guest-memory bulk copies so device payloads never pass through Python).
 *
 * Contract shared by every function: the return value is 0 on success or a negative errno;
 * on failure a one-line explanation is written to `msg` (at most `msglen` bytes, always
 * NUL-terminated when msglen > 0). No function aborts, exits or prints.
 *
 * The region between CDEF-BEGIN and CDEF-END is read verbatim by shim/build_shim.py as the
 * cffi declaration, so it must stay free of preprocessor directives.
 */
#ifndef MVSHIM_H
#define MVSHIM_H

#include <stddef.h>
#include <stdint.h>

/* CDEF-BEGIN */
typedef struct mv_vm mv_vm;
typedef struct mv_vcpu mv_vcpu;

enum {
    MV_KVM_API_VERSION = 12,
    MV_MSG_LEN = 256,
    MV_SG_MAX = 4096
};

/* Exit kinds reported by mv_vcpu_run (a stable subset of KVM's exit reasons). */
enum mv_exit_kind {
    MV_EXIT_IO = 1,
    MV_EXIT_MMIO = 2,
    MV_EXIT_HLT = 3,
    MV_EXIT_SHUTDOWN = 4,
    MV_EXIT_INTERNAL_ERROR = 5,
    MV_EXIT_FAIL_ENTRY = 6,
    MV_EXIT_SYSTEM_EVENT = 7,
    MV_EXIT_INTR = 8,
    MV_EXIT_OTHER = 9
};

enum { MV_IO_IN = 0, MV_IO_OUT = 1 };

/* One decoded exit. Only the fields of the reported kind are meaningful. */
struct mv_exit {
    uint32_t kind;            /* enum mv_exit_kind */
    uint32_t kvm_reason;      /* raw kvm_run.exit_reason */
    /* MV_EXIT_IO */
    uint16_t io_port;
    uint8_t io_size;          /* 1, 2 or 4 */
    uint8_t io_direction;     /* MV_IO_IN / MV_IO_OUT */
    uint32_t io_count;        /* > 1 for rep ins/outs */
    uint64_t io_value;        /* first element of an OUT, little-endian */
    uint8_t *io_data;         /* io_size * io_count bytes inside the kvm_run page */
    /* MV_EXIT_MMIO */
    uint64_t mmio_addr;
    uint32_t mmio_len;        /* 1..8 */
    uint8_t mmio_is_write;
    uint64_t mmio_value;      /* value written (little-endian), for writes */
    /* MV_EXIT_INTERNAL_ERROR */
    uint32_t suberror;
    uint32_t ndata;
    uint64_t data[4];
    /* MV_EXIT_FAIL_ENTRY */
    uint64_t fail_reason;
    /* MV_EXIT_SYSTEM_EVENT */
    uint32_t event_type;
};

struct mv_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
};

struct mv_segment {
    uint64_t base;
    uint32_t limit;
    uint16_t selector;
    uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};

struct mv_dtable {
    uint64_t base;
    uint16_t limit;
};

struct mv_sregs {
    struct mv_segment cs, ds, es, fs, gs, ss, tr, ldt;
    struct mv_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
};

/* Pure bounds check used by every guest-memory accessor: 0 when [gpa, gpa+len) lies inside
 * [0, mem_size) (len 0 included, gpa+len overflow rejected), else -EFAULT. */
int mv_range_check(uint64_t mem_size, uint64_t gpa, uint64_t len);

/* Open the KVM device (NULL -> "/dev/kvm"), check KVM_GET_API_VERSION == 12, create a VM. */
int mv_vm_create(const char *kvm_path, mv_vm **out, char *msg, size_t msglen);
void mv_vm_destroy(mv_vm *vm);

/* Anonymous mmap of `size` bytes registered as slot 0 at guest-physical 0 (once per VM). */
int mv_vm_set_memory(mv_vm *vm, uint64_t size, char *msg, size_t msglen);
uint64_t mv_vm_memory_size(const mv_vm *vm);

int mv_vm_set_tss_addr(mv_vm *vm, uint64_t addr, char *msg, size_t msglen);
int mv_vm_set_identity_map_addr(mv_vm *vm, uint64_t addr, char *msg, size_t msglen);
int mv_vm_create_irqchip(mv_vm *vm, char *msg, size_t msglen);
int mv_vm_create_pit2(mv_vm *vm, char *msg, size_t msglen);
/* KVM_IRQ_LINE: level 1 raises, 0 lowers the GSI. Safe to call from any thread. */
int mv_vm_irq_line(mv_vm *vm, uint32_t gsi, int level, char *msg, size_t msglen);

/* Bounds-checked guest-memory copies (-EFAULT outside RAM, -ENOMEM before mv_vm_set_memory). */
int mv_mem_read(mv_vm *vm, uint64_t gpa, void *buf, uint64_t len, char *msg, size_t msglen);
int mv_mem_write(mv_vm *vm, uint64_t gpa, const void *buf, uint64_t len,
                 char *msg, size_t msglen);
/* Bulk file <-> guest memory: pread(fd, guest[gpa..gpa+len), file_offset) and the converse.
 * Loops over short transfers; *done receives the bytes moved (short only at end of file). */
int mv_mem_pread(mv_vm *vm, int fd, uint64_t gpa, uint64_t len, int64_t file_offset,
                 uint64_t *done, char *msg, size_t msglen);
int mv_mem_pwrite(mv_vm *vm, int fd, uint64_t gpa, uint64_t len, int64_t file_offset,
                  uint64_t *done, char *msg, size_t msglen);
/* Scatter/gather file <-> guest memory for one request: `segs` holds `nseg` (gpa, len) pairs
 * (at most MV_SG_MAX). Every range is bounds-checked before any byte moves (-EFAULT, nothing
 * transferred); then consecutive file bytes from file_offset are read into, or written from,
 * the ranges in order (through a contiguous bounce buffer: one large file call per MiB),
 * looping over short transfers. *done receives the bytes moved (short only at end of file). */
int mv_mem_preadv(mv_vm *vm, int fd, const uint64_t *segs, uint32_t nseg, int64_t file_offset,
                  uint64_t *done, char *msg, size_t msglen);
int mv_mem_pwritev(mv_vm *vm, int fd, const uint64_t *segs, uint32_t nseg, int64_t file_offset,
                   uint64_t *done, char *msg, size_t msglen);

/* Create vCPU `id`, map its kvm_run and install KVM_GET_SUPPORTED_CPUID as its CPUID. */
int mv_vcpu_create(mv_vm *vm, uint32_t id, mv_vcpu **out, char *msg, size_t msglen);
void mv_vcpu_destroy(mv_vcpu *vcpu);

int mv_vcpu_get_regs(mv_vcpu *vcpu, struct mv_regs *regs, char *msg, size_t msglen);
int mv_vcpu_set_regs(mv_vcpu *vcpu, const struct mv_regs *regs, char *msg, size_t msglen);
int mv_vcpu_get_sregs(mv_vcpu *vcpu, struct mv_sregs *sregs, char *msg, size_t msglen);
int mv_vcpu_set_sregs(mv_vcpu *vcpu, const struct mv_sregs *sregs, char *msg, size_t msglen);
int mv_vcpu_set_msr(mv_vcpu *vcpu, uint32_t index, uint64_t value, char *msg, size_t msglen);
/* Default FPU state (FCW 0x37f, MXCSR 0x1f80), as after FNINIT. */
int mv_vcpu_init_fpu(mv_vcpu *vcpu, char *msg, size_t msglen);
/* Local APIC LINT0 = ExtINT, LINT1 = NMI (the PC wiring of the 8259 and NMI lines). */
int mv_vcpu_init_lapic(mv_vcpu *vcpu, char *msg, size_t msglen);

/* KVM_RUN once and decode the exit. A signal interrupting KVM_RUN yields MV_EXIT_INTR. */
int mv_vcpu_run(mv_vcpu *vcpu, struct mv_exit *exit, char *msg, size_t msglen);
/* Ask a running (or the next) KVM_RUN to return MV_EXIT_INTR; async-signal-safe. */
void mv_vcpu_request_exit(mv_vcpu *vcpu, int on);
/* Complete the pending IO-in (len == io_size * io_count) or MMIO read (len == mmio_len). */
int mv_vcpu_complete_io_in(mv_vcpu *vcpu, const void *data, uint32_t len,
                           char *msg, size_t msglen);
int mv_vcpu_complete_mmio_read(mv_vcpu *vcpu, const void *data, uint32_t len,
                               char *msg, size_t msglen);

/* Copy the host's supported CPUID table: up to `max` entries of (function, index, eax, ebx,
 * ecx, edx) as 6 uint32 each into `out`; *count receives the number of entries. */
int mv_vm_supported_cpuid(mv_vm *vm, uint32_t *out, uint32_t max, uint32_t *count,
                          char *msg, size_t msglen);
/* Lean-ABI accessors (lean_abi.c), bound by MicroVMM/FFI/Shim.lean. */
uint64_t mv_lean_mem_size(size_t vm);
uint64_t mv_lean_mem_read_u32(size_t vm, uint64_t gpa);
uint32_t mv_lean_mem_write_u32(size_t vm, uint64_t gpa, uint32_t value);
/* CDEF-END */

#endif
