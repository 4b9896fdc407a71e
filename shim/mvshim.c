/*
 * mvshim: KVM ioctls, guest memory and exit decoding for the MicroVMM engine.
 * See mvshim.h for the contract every function follows.
 */
#define _GNU_SOURCE
#include "mvshim.h"
#include "mvbounds.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct mv_vm {
    int kvm_fd;
    int vm_fd;
    uint8_t *mem;
    uint64_t mem_size;
    int run_size;
};

struct mv_vcpu {
    mv_vm *vm;
    int fd;
    struct kvm_run *run;
    size_t run_size;
    uint32_t id;
};

/* CPUID table sizes grow with CPU generations; start here and double on E2BIG. */
#define MV_CPUID_START 128
#define MV_CPUID_MAX 4096

static int fail(char *msg, size_t msglen, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *msg, size_t msglen, int err, const char *fmt, ...)
{
    if (msg != NULL && msglen > 0) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < msglen && err > 0)
            snprintf(msg + n, msglen - (size_t)n, ": %s", strerror(err));
    }
    return err > 0 ? -err : (err < 0 ? err : -EINVAL);
}

static void ok(char *msg, size_t msglen)
{
    if (msg != NULL && msglen > 0)
        msg[0] = '\0';
}

/* mv_range_check lives in mvbounds.c, where Frama-C/WP proves its contract. */

/* ---------------------------------------------------------------------------------------- */
/* VM                                                                                        */

int mv_vm_create(const char *kvm_path, mv_vm **out, char *msg, size_t msglen)
{
    if (out == NULL)
        return fail(msg, msglen, EINVAL, "mv_vm_create: null output pointer");
    *out = NULL;
    const char *path = kvm_path != NULL ? kvm_path : "/dev/kvm";
    int kvm = open(path, O_RDWR | O_CLOEXEC);
    if (kvm < 0)
        return fail(msg, msglen, errno, "cannot open %s", path);
    int version = ioctl(kvm, KVM_GET_API_VERSION, 0);
    if (version < 0) {
        int err = errno;
        close(kvm);
        return fail(msg, msglen, err, "%s: KVM_GET_API_VERSION failed (not a KVM device?)", path);
    }
    if (version != MV_KVM_API_VERSION) {
        close(kvm);
        return fail(msg, msglen, ENOTSUP, "%s: KVM API version %d, need %d", path, version,
                    MV_KVM_API_VERSION);
    }
    int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run)) {
        int err = run_size < 0 ? errno : EINVAL;
        close(kvm);
        return fail(msg, msglen, err, "%s: KVM_GET_VCPU_MMAP_SIZE failed", path);
    }
    int vmfd = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vmfd < 0) {
        int err = errno;
        close(kvm);
        return fail(msg, msglen, err, "%s: KVM_CREATE_VM failed", path);
    }
    mv_vm *vm = calloc(1, sizeof(*vm));
    if (vm == NULL) {
        close(vmfd);
        close(kvm);
        return fail(msg, msglen, ENOMEM, "mv_vm_create: out of memory");
    }
    vm->kvm_fd = kvm;
    vm->vm_fd = vmfd;
    vm->run_size = run_size;
    *out = vm;
    ok(msg, msglen);
    return 0;
}

void mv_vm_destroy(mv_vm *vm)
{
    if (vm == NULL)
        return;
    if (vm->mem != NULL)
        munmap(vm->mem, vm->mem_size);
    close(vm->vm_fd);
    close(vm->kvm_fd);
    free(vm);
}

int mv_vm_set_memory(mv_vm *vm, uint64_t size, char *msg, size_t msglen)
{
    if (vm == NULL)
        return fail(msg, msglen, EINVAL, "null VM");
    if (vm->mem != NULL)
        return fail(msg, msglen, EEXIST, "guest RAM is already set");
    if (size == 0 || (size & 0xfff) != 0 || size > ((uint64_t)1 << 46))
        return fail(msg, msglen, EINVAL, "guest RAM size %#llx is not a non-zero multiple of 4 KiB",
                    (unsigned long long)size);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (mem == MAP_FAILED)
        return fail(msg, msglen, errno, "cannot map %llu bytes of guest RAM",
                    (unsigned long long)size);
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .flags = 0,
        .guest_phys_addr = 0,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)mem,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        int err = errno;
        munmap(mem, size);
        return fail(msg, msglen, err, "KVM_SET_USER_MEMORY_REGION failed");
    }
    vm->mem = mem;
    vm->mem_size = size;
    ok(msg, msglen);
    return 0;
}

uint64_t mv_vm_memory_size(const mv_vm *vm)
{
    return vm != NULL ? vm->mem_size : 0;
}

static int vm_ioctl(mv_vm *vm, unsigned long req, unsigned long arg, const char *name,
                    char *msg, size_t msglen)
{
    if (vm == NULL)
        return fail(msg, msglen, EINVAL, "null VM");
    if (ioctl(vm->vm_fd, req, arg) < 0)
        return fail(msg, msglen, errno, "%s failed", name);
    ok(msg, msglen);
    return 0;
}

int mv_vm_set_tss_addr(mv_vm *vm, uint64_t addr, char *msg, size_t msglen)
{
    return vm_ioctl(vm, KVM_SET_TSS_ADDR, (unsigned long)addr, "KVM_SET_TSS_ADDR", msg, msglen);
}

int mv_vm_set_identity_map_addr(mv_vm *vm, uint64_t addr, char *msg, size_t msglen)
{
    uint64_t a = addr;
    return vm_ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, (unsigned long)(uintptr_t)&a,
                    "KVM_SET_IDENTITY_MAP_ADDR", msg, msglen);
}

int mv_vm_create_irqchip(mv_vm *vm, char *msg, size_t msglen)
{
    return vm_ioctl(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP", msg, msglen);
}

int mv_vm_create_pit2(mv_vm *vm, char *msg, size_t msglen)
{
    struct kvm_pit_config config;
    memset(&config, 0, sizeof(config));
    /* Port 0x61 (PIT channel 2 gate / speaker) handled in the kernel too: Linux's PIT-based
     * TSC calibration reads it. */
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    return vm_ioctl(vm, KVM_CREATE_PIT2, (unsigned long)(uintptr_t)&config, "KVM_CREATE_PIT2",
                    msg, msglen);
}

int mv_vm_irq_line(mv_vm *vm, uint32_t gsi, int level, char *msg, size_t msglen)
{
    struct kvm_irq_level irq;
    memset(&irq, 0, sizeof(irq));
    irq.irq = gsi;
    irq.level = level ? 1 : 0;
    return vm_ioctl(vm, KVM_IRQ_LINE, (unsigned long)(uintptr_t)&irq, "KVM_IRQ_LINE", msg,
                    msglen);
}

int mv_vm_supported_cpuid(mv_vm *vm, uint32_t *out, uint32_t max, uint32_t *count,
                          char *msg, size_t msglen)
{
    if (vm == NULL || count == NULL || (out == NULL && max > 0))
        return fail(msg, msglen, EINVAL, "mv_vm_supported_cpuid: bad arguments");
    for (uint32_t n = MV_CPUID_START; n <= MV_CPUID_MAX; n *= 2) {
        size_t bytes = sizeof(struct kvm_cpuid2) + n * sizeof(struct kvm_cpuid_entry2);
        struct kvm_cpuid2 *cpuid = calloc(1, bytes);
        if (cpuid == NULL)
            return fail(msg, msglen, ENOMEM, "mv_vm_supported_cpuid: out of memory");
        cpuid->nent = n;
        if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
            int err = errno;
            free(cpuid);
            if (err == E2BIG)
                continue;
            return fail(msg, msglen, err, "KVM_GET_SUPPORTED_CPUID failed");
        }
        uint32_t k = cpuid->nent < max ? cpuid->nent : max;
        for (uint32_t i = 0; i < k; i++) {
            const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
            uint32_t *row = out + 6 * (size_t)i;
            row[0] = e->function;
            row[1] = e->index;
            row[2] = e->eax;
            row[3] = e->ebx;
            row[4] = e->ecx;
            row[5] = e->edx;
        }
        *count = k;
        free(cpuid);
        ok(msg, msglen);
        return 0;
    }
    return fail(msg, msglen, E2BIG, "KVM_GET_SUPPORTED_CPUID: table larger than %d entries",
                MV_CPUID_MAX);
}

/* ---------------------------------------------------------------------------------------- */
/* Guest memory                                                                              */

static int mem_check(mv_vm *vm, uint64_t gpa, uint64_t len, const char *what, char *msg,
                     size_t msglen)
{
    if (vm == NULL)
        return fail(msg, msglen, EINVAL, "null VM");
    if (vm->mem == NULL)
        return fail(msg, msglen, ENOMEM, "%s: guest RAM is not set", what);
    if (mv_range_check(vm->mem_size, gpa, len) != 0)
        return fail(msg, msglen, -EFAULT,
                    "%s: guest range [%#llx, +%#llx) is outside RAM [0, %#llx)", what,
                    (unsigned long long)gpa, (unsigned long long)len,
                    (unsigned long long)vm->mem_size);
    return 0;
}

int mv_mem_read(mv_vm *vm, uint64_t gpa, void *buf, uint64_t len, char *msg, size_t msglen)
{
    int rc = mem_check(vm, gpa, len, "guest read", msg, msglen);
    if (rc != 0)
        return rc;
    if (len > 0) {
        if (buf == NULL)
            return fail(msg, msglen, EINVAL, "guest read: null buffer");
        memcpy(buf, vm->mem + gpa, len);
    }
    ok(msg, msglen);
    return 0;
}

int mv_mem_write(mv_vm *vm, uint64_t gpa, const void *buf, uint64_t len,
                 char *msg, size_t msglen)
{
    int rc = mem_check(vm, gpa, len, "guest write", msg, msglen);
    if (rc != 0)
        return rc;
    if (len > 0) {
        if (buf == NULL)
            return fail(msg, msglen, EINVAL, "guest write: null buffer");
        memcpy(vm->mem + gpa, buf, len);
    }
    ok(msg, msglen);
    return 0;
}

static int file_xfer(mv_vm *vm, int fd, uint64_t gpa, uint64_t len, int64_t off, int to_guest,
                     uint64_t *done, char *msg, size_t msglen)
{
    const char *what = to_guest ? "pread into guest" : "pwrite from guest";
    if (done != NULL)
        *done = 0;
    int rc = mem_check(vm, gpa, len, what, msg, msglen);
    if (rc != 0)
        return rc;
    if (off < 0 || (uint64_t)off > (uint64_t)INT64_MAX - len)
        return fail(msg, msglen, EINVAL, "%s: bad file offset %lld", what, (long long)off);
    uint64_t moved = 0;
    while (moved < len) {
        size_t chunk = (size_t)(len - moved);
        if (chunk > ((size_t)1 << 30))
            chunk = (size_t)1 << 30;
        ssize_t n = to_guest ? pread(fd, vm->mem + gpa + moved, chunk, (off_t)(off + (int64_t)moved))
                             : pwrite(fd, vm->mem + gpa + moved, chunk, (off_t)(off + (int64_t)moved));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int err = errno;
            if (done != NULL)
                *done = moved;
            return fail(msg, msglen, err, "%s at file offset %lld", what,
                        (long long)(off + (int64_t)moved));
        }
        if (n == 0)
            break; /* end of file */
        moved += (uint64_t)n;
    }
    if (done != NULL)
        *done = moved;
    ok(msg, msglen);
    return 0;
}

int mv_mem_pread(mv_vm *vm, int fd, uint64_t gpa, uint64_t len, int64_t file_offset,
                 uint64_t *done, char *msg, size_t msglen)
{
    return file_xfer(vm, fd, gpa, len, file_offset, 1, done, msg, msglen);
}

int mv_mem_pwrite(mv_vm *vm, int fd, uint64_t gpa, uint64_t len, int64_t file_offset,
                  uint64_t *done, char *msg, size_t msglen)
{
    return file_xfer(vm, fd, gpa, len, file_offset, 0, done, msg, msglen);
}

/* Scatter/gather goes through one contiguous bounce buffer of at most this many bytes per
 * file call. A vectored call (preadv with one iovec per guest page) is split per iovec by some
 * file systems (the Linux 9p client sends one request per iovec segment), so one large
 * contiguous pread/pwrite plus a memcpy per range is both simpler and far faster there; on a
 * local file system the extra copy is cheap next to the system call. */
#define MV_BOUNCE_MAX ((uint64_t)1 << 20)

/* pread/pwrite exactly `len` bytes unless end of file; -errno on failure, else bytes moved. */
static int64_t file_all(int fd, uint8_t *buf, uint64_t len, int64_t off, int reading)
{
    uint64_t moved = 0;
    while (moved < len) {
        ssize_t n = reading ? pread(fd, buf + moved, (size_t)(len - moved),
                                    (off_t)(off + (int64_t)moved))
                            : pwrite(fd, buf + moved, (size_t)(len - moved),
                                     (off_t)(off + (int64_t)moved));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -(int64_t)errno;
        }
        if (n == 0)
            break; /* end of file */
        moved += (uint64_t)n;
    }
    return (int64_t)moved;
}

static int file_xferv(mv_vm *vm, int fd, const uint64_t *segs, uint32_t nseg, int64_t off,
                      int to_guest, uint64_t *done, char *msg, size_t msglen)
{
    const char *what = to_guest ? "preadv into guest" : "pwritev from guest";
    if (done != NULL)
        *done = 0;
    if (vm == NULL)
        return fail(msg, msglen, EINVAL, "null VM");
    if (nseg > MV_SG_MAX || (segs == NULL && nseg > 0))
        return fail(msg, msglen, EINVAL, "%s: %u segments (at most %d)", what, nseg, MV_SG_MAX);
    uint64_t total = 0;
    for (uint32_t i = 0; i < nseg; i++) {
        int rc = mem_check(vm, segs[2 * i], segs[2 * i + 1], what, msg, msglen);
        if (rc != 0)
            return rc;
        total += segs[2 * i + 1]; /* each len <= mem_size <= 2^46, nseg <= 4096: no overflow */
    }
    if (off < 0 || (uint64_t)off > (uint64_t)INT64_MAX - total)
        return fail(msg, msglen, EINVAL, "%s: bad file offset %lld", what, (long long)off);
    if (nseg == 1) /* one range: straight between the file and guest RAM */
        return file_xfer(vm, fd, segs[0], segs[1], off, to_guest, done, msg, msglen);
    uint64_t cap = total < MV_BOUNCE_MAX ? total : MV_BOUNCE_MAX;
    uint8_t *bounce = cap > 0 ? malloc((size_t)cap) : NULL;
    if (cap > 0 && bounce == NULL)
        return fail(msg, msglen, ENOMEM, "%s: no bounce buffer", what);
    uint64_t moved = 0; /* bytes done, file side */
    uint32_t seg = 0;
    uint64_t within = 0; /* bytes of segs[seg] already done */
    int rc = 0;
    while (moved < total) {
        uint64_t want = total - moved < cap ? total - moved : cap;
        int64_t got = (int64_t)want;
        if (to_guest) {
            got = file_all(fd, bounce, want, off + (int64_t)moved, 1);
            if (got < 0) {
                rc = fail(msg, msglen, (int)-got, "%s at file offset %lld", what,
                          (long long)(off + (int64_t)moved));
                break;
            }
        }
        /* Copy between the bounce buffer and the ranges, in order. */
        uint64_t pos = 0;
        while (pos < (uint64_t)got) {
            uint64_t len = segs[2 * seg + 1] - within;
            if (len > (uint64_t)got - pos)
                len = (uint64_t)got - pos;
            uint8_t *g = vm->mem + segs[2 * seg] + within;
            if (to_guest)
                memcpy(g, bounce + pos, (size_t)len);
            else
                memcpy(bounce + pos, g, (size_t)len);
            pos += len;
            within += len;
            if (within == segs[2 * seg + 1]) {
                within = 0;
                seg++;
            }
        }
        if (!to_guest) {
            got = file_all(fd, bounce, want, off + (int64_t)moved, 0);
            if (got < 0) {
                rc = fail(msg, msglen, (int)-got, "%s at file offset %lld", what,
                          (long long)(off + (int64_t)moved));
                break;
            }
        }
        moved += (uint64_t)got;
        if ((uint64_t)got < want)
            break; /* end of file */
    }
    free(bounce);
    if (done != NULL)
        *done = moved;
    if (rc == 0)
        ok(msg, msglen);
    return rc;
}

int mv_mem_preadv(mv_vm *vm, int fd, const uint64_t *segs, uint32_t nseg, int64_t file_offset,
                  uint64_t *done, char *msg, size_t msglen)
{
    return file_xferv(vm, fd, segs, nseg, file_offset, 1, done, msg, msglen);
}

int mv_mem_pwritev(mv_vm *vm, int fd, const uint64_t *segs, uint32_t nseg, int64_t file_offset,
                   uint64_t *done, char *msg, size_t msglen)
{
    return file_xferv(vm, fd, segs, nseg, file_offset, 0, done, msg, msglen);
}

/* ---------------------------------------------------------------------------------------- */
/* vCPU                                                                                      */

static int set_cpuid(mv_vcpu *vcpu, char *msg, size_t msglen)
{
    for (uint32_t n = MV_CPUID_START; n <= MV_CPUID_MAX; n *= 2) {
        size_t bytes = sizeof(struct kvm_cpuid2) + n * sizeof(struct kvm_cpuid_entry2);
        struct kvm_cpuid2 *cpuid = calloc(1, bytes);
        if (cpuid == NULL)
            return fail(msg, msglen, ENOMEM, "CPUID: out of memory");
        cpuid->nent = n;
        if (ioctl(vcpu->vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
            int err = errno;
            free(cpuid);
            if (err == E2BIG)
                continue;
            return fail(msg, msglen, err, "KVM_GET_SUPPORTED_CPUID failed");
        }
        for (uint32_t i = 0; i < cpuid->nent; i++) {
            struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
            /* The supported table describes the host; the guest sees its own APIC ID. */
            if (e->function == 1) {
                e->ebx = (e->ebx & 0x00ffffffu) | (vcpu->id << 24);
                /* CPUID.1:ECX[31] "hypervisor present": without it Linux never looks at the
                 * KVM leaves (0x40000000) and runs without kvmclock. */
                e->ecx |= 1u << 31;
            }
            if (e->function == 0xb || e->function == 0x1f)
                e->edx = vcpu->id;
        }
        int rc = ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid);
        int err = errno;
        free(cpuid);
        if (rc < 0)
            return fail(msg, msglen, err, "KVM_SET_CPUID2 failed");
        return 0;
    }
    return fail(msg, msglen, E2BIG, "KVM_GET_SUPPORTED_CPUID: table larger than %d entries",
                MV_CPUID_MAX);
}

int mv_vcpu_create(mv_vm *vm, uint32_t id, mv_vcpu **out, char *msg, size_t msglen)
{
    if (vm == NULL || out == NULL)
        return fail(msg, msglen, EINVAL, "mv_vcpu_create: bad arguments");
    *out = NULL;
    int fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
    if (fd < 0)
        return fail(msg, msglen, errno, "KVM_CREATE_VCPU %u failed", id);
    void *run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (run == MAP_FAILED) {
        int err = errno;
        close(fd);
        return fail(msg, msglen, err, "cannot map kvm_run of vCPU %u", id);
    }
    mv_vcpu *vcpu = calloc(1, sizeof(*vcpu));
    if (vcpu == NULL) {
        munmap(run, (size_t)vm->run_size);
        close(fd);
        return fail(msg, msglen, ENOMEM, "mv_vcpu_create: out of memory");
    }
    vcpu->vm = vm;
    vcpu->fd = fd;
    vcpu->run = run;
    vcpu->run_size = (size_t)vm->run_size;
    vcpu->id = id;
    int rc = set_cpuid(vcpu, msg, msglen);
    if (rc != 0) {
        mv_vcpu_destroy(vcpu);
        return rc;
    }
    *out = vcpu;
    ok(msg, msglen);
    return 0;
}

void mv_vcpu_destroy(mv_vcpu *vcpu)
{
    if (vcpu == NULL)
        return;
    munmap(vcpu->run, vcpu->run_size);
    close(vcpu->fd);
    free(vcpu);
}

int mv_vcpu_get_regs(mv_vcpu *vcpu, struct mv_regs *r, char *msg, size_t msglen)
{
    if (vcpu == NULL || r == NULL)
        return fail(msg, msglen, EINVAL, "mv_vcpu_get_regs: bad arguments");
    struct kvm_regs k;
    if (ioctl(vcpu->fd, KVM_GET_REGS, &k) < 0)
        return fail(msg, msglen, errno, "KVM_GET_REGS failed");
    r->rax = k.rax; r->rbx = k.rbx; r->rcx = k.rcx; r->rdx = k.rdx;
    r->rsi = k.rsi; r->rdi = k.rdi; r->rsp = k.rsp; r->rbp = k.rbp;
    r->r8 = k.r8; r->r9 = k.r9; r->r10 = k.r10; r->r11 = k.r11;
    r->r12 = k.r12; r->r13 = k.r13; r->r14 = k.r14; r->r15 = k.r15;
    r->rip = k.rip; r->rflags = k.rflags;
    ok(msg, msglen);
    return 0;
}

int mv_vcpu_set_regs(mv_vcpu *vcpu, const struct mv_regs *r, char *msg, size_t msglen)
{
    if (vcpu == NULL || r == NULL)
        return fail(msg, msglen, EINVAL, "mv_vcpu_set_regs: bad arguments");
    struct kvm_regs k;
    memset(&k, 0, sizeof(k));
    k.rax = r->rax; k.rbx = r->rbx; k.rcx = r->rcx; k.rdx = r->rdx;
    k.rsi = r->rsi; k.rdi = r->rdi; k.rsp = r->rsp; k.rbp = r->rbp;
    k.r8 = r->r8; k.r9 = r->r9; k.r10 = r->r10; k.r11 = r->r11;
    k.r12 = r->r12; k.r13 = r->r13; k.r14 = r->r14; k.r15 = r->r15;
    k.rip = r->rip; k.rflags = r->rflags;
    if (ioctl(vcpu->fd, KVM_SET_REGS, &k) < 0)
        return fail(msg, msglen, errno, "KVM_SET_REGS failed");
    ok(msg, msglen);
    return 0;
}

static void seg_from_kvm(struct mv_segment *m, const struct kvm_segment *k)
{
    m->base = k->base; m->limit = k->limit; m->selector = k->selector; m->type = k->type;
    m->present = k->present; m->dpl = k->dpl; m->db = k->db; m->s = k->s; m->l = k->l;
    m->g = k->g; m->avl = k->avl; m->unusable = k->unusable;
}

static void seg_to_kvm(struct kvm_segment *k, const struct mv_segment *m)
{
    k->base = m->base; k->limit = m->limit; k->selector = m->selector; k->type = m->type;
    k->present = m->present; k->dpl = m->dpl; k->db = m->db; k->s = m->s; k->l = m->l;
    k->g = m->g; k->avl = m->avl; k->unusable = m->unusable;
}

int mv_vcpu_get_sregs(mv_vcpu *vcpu, struct mv_sregs *s, char *msg, size_t msglen)
{
    if (vcpu == NULL || s == NULL)
        return fail(msg, msglen, EINVAL, "mv_vcpu_get_sregs: bad arguments");
    struct kvm_sregs k;
    if (ioctl(vcpu->fd, KVM_GET_SREGS, &k) < 0)
        return fail(msg, msglen, errno, "KVM_GET_SREGS failed");
    seg_from_kvm(&s->cs, &k.cs); seg_from_kvm(&s->ds, &k.ds); seg_from_kvm(&s->es, &k.es);
    seg_from_kvm(&s->fs, &k.fs); seg_from_kvm(&s->gs, &k.gs); seg_from_kvm(&s->ss, &k.ss);
    seg_from_kvm(&s->tr, &k.tr); seg_from_kvm(&s->ldt, &k.ldt);
    s->gdt.base = k.gdt.base; s->gdt.limit = k.gdt.limit;
    s->idt.base = k.idt.base; s->idt.limit = k.idt.limit;
    s->cr0 = k.cr0; s->cr2 = k.cr2; s->cr3 = k.cr3; s->cr4 = k.cr4; s->cr8 = k.cr8;
    s->efer = k.efer; s->apic_base = k.apic_base;
    ok(msg, msglen);
    return 0;
}

int mv_vcpu_set_sregs(mv_vcpu *vcpu, const struct mv_sregs *s, char *msg, size_t msglen)
{
    if (vcpu == NULL || s == NULL)
        return fail(msg, msglen, EINVAL, "mv_vcpu_set_sregs: bad arguments");
    struct kvm_sregs k;
    /* Read first so the pending-interrupt bitmap is carried over unchanged. */
    if (ioctl(vcpu->fd, KVM_GET_SREGS, &k) < 0)
        return fail(msg, msglen, errno, "KVM_GET_SREGS failed");
    seg_to_kvm(&k.cs, &s->cs); seg_to_kvm(&k.ds, &s->ds); seg_to_kvm(&k.es, &s->es);
    seg_to_kvm(&k.fs, &s->fs); seg_to_kvm(&k.gs, &s->gs); seg_to_kvm(&k.ss, &s->ss);
    seg_to_kvm(&k.tr, &s->tr); seg_to_kvm(&k.ldt, &s->ldt);
    k.gdt.base = s->gdt.base; k.gdt.limit = s->gdt.limit;
    k.idt.base = s->idt.base; k.idt.limit = s->idt.limit;
    k.cr0 = s->cr0; k.cr2 = s->cr2; k.cr3 = s->cr3; k.cr4 = s->cr4; k.cr8 = s->cr8;
    k.efer = s->efer; k.apic_base = s->apic_base;
    if (ioctl(vcpu->fd, KVM_SET_SREGS, &k) < 0)
        return fail(msg, msglen, errno, "KVM_SET_SREGS failed");
    ok(msg, msglen);
    return 0;
}

int mv_vcpu_set_msr(mv_vcpu *vcpu, uint32_t index, uint64_t value, char *msg, size_t msglen)
{
    if (vcpu == NULL)
        return fail(msg, msglen, EINVAL, "null vCPU");
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry entry;
    } m;
    memset(&m, 0, sizeof(m));
    m.hdr.nmsrs = 1;
    m.entry.index = index;
    m.entry.data = value;
    int n = ioctl(vcpu->fd, KVM_SET_MSRS, &m);
    if (n < 0)
        return fail(msg, msglen, errno, "KVM_SET_MSRS %#x failed", index);
    if (n != 1)
        return fail(msg, msglen, EINVAL, "KVM_SET_MSRS: MSR %#x rejected", index);
    ok(msg, msglen);
    return 0;
}

int mv_vcpu_init_fpu(mv_vcpu *vcpu, char *msg, size_t msglen)
{
    if (vcpu == NULL)
        return fail(msg, msglen, EINVAL, "null vCPU");
    struct kvm_fpu fpu;
    memset(&fpu, 0, sizeof(fpu));
    fpu.fcw = 0x37f;
    fpu.mxcsr = 0x1f80;
    if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
        return fail(msg, msglen, errno, "KVM_SET_FPU failed");
    ok(msg, msglen);
    return 0;
}

/* Local APIC register offsets and LVT delivery modes (Intel SDM vol. 3, 11.5.1). */
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static void lvt_set_mode(struct kvm_lapic_state *st, int reg, uint32_t mode)
{
    uint32_t v;
    memcpy(&v, &st->regs[reg], sizeof(v));
    v = (v & ~0x700u) | (mode << 8);
    memcpy(&st->regs[reg], &v, sizeof(v));
}

int mv_vcpu_init_lapic(mv_vcpu *vcpu, char *msg, size_t msglen)
{
    if (vcpu == NULL)
        return fail(msg, msglen, EINVAL, "null vCPU");
    struct kvm_lapic_state st;
    if (ioctl(vcpu->fd, KVM_GET_LAPIC, &st) < 0)
        return fail(msg, msglen, errno, "KVM_GET_LAPIC failed");
    lvt_set_mode(&st, APIC_LVT0, APIC_MODE_EXTINT);
    lvt_set_mode(&st, APIC_LVT1, APIC_MODE_NMI);
    if (ioctl(vcpu->fd, KVM_SET_LAPIC, &st) < 0)
        return fail(msg, msglen, errno, "KVM_SET_LAPIC failed");
    ok(msg, msglen);
    return 0;
}

static uint64_t le_value(const uint8_t *p, uint32_t len)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < len && i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int mv_vcpu_run(mv_vcpu *vcpu, struct mv_exit *e, char *msg, size_t msglen)
{
    if (vcpu == NULL || e == NULL)
        return fail(msg, msglen, EINVAL, "mv_vcpu_run: bad arguments");
    memset(e, 0, sizeof(*e));
    if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
        int err = errno;
        if (err == EINTR || err == EAGAIN) {
            vcpu->run->immediate_exit = 0;
            e->kind = MV_EXIT_INTR;
            e->kvm_reason = KVM_EXIT_INTR;
            ok(msg, msglen);
            return 0;
        }
        return fail(msg, msglen, err, "KVM_RUN failed");
    }
    struct kvm_run *run = vcpu->run;
    e->kvm_reason = run->exit_reason;
    switch (run->exit_reason) {
    case KVM_EXIT_IO: {
        uint64_t bytes = (uint64_t)run->io.size * run->io.count;
        if (run->io.size == 0 || run->io.size > 8 || run->io.count == 0 ||
            run->io.data_offset > vcpu->run_size || bytes > vcpu->run_size - run->io.data_offset)
            return fail(msg, msglen, EPROTO, "KVM_EXIT_IO with a malformed data area");
        e->kind = MV_EXIT_IO;
        e->io_port = run->io.port;
        e->io_size = run->io.size;
        e->io_direction = run->io.direction == KVM_EXIT_IO_OUT ? MV_IO_OUT : MV_IO_IN;
        e->io_count = run->io.count;
        e->io_data = (uint8_t *)run + run->io.data_offset;
        if (e->io_direction == MV_IO_OUT)
            e->io_value = le_value(e->io_data, run->io.size);
        break;
    }
    case KVM_EXIT_MMIO:
        e->kind = MV_EXIT_MMIO;
        e->mmio_addr = run->mmio.phys_addr;
        e->mmio_len = run->mmio.len > 8 ? 8 : run->mmio.len;
        e->mmio_is_write = run->mmio.is_write ? 1 : 0;
        if (e->mmio_is_write)
            e->mmio_value = le_value(run->mmio.data, e->mmio_len);
        break;
    case KVM_EXIT_HLT:
        e->kind = MV_EXIT_HLT;
        break;
    case KVM_EXIT_SHUTDOWN:
        e->kind = MV_EXIT_SHUTDOWN;
        break;
    case KVM_EXIT_INTERNAL_ERROR: {
        e->kind = MV_EXIT_INTERNAL_ERROR;
        e->suberror = run->internal.suberror;
        uint32_t n = run->internal.ndata;
        e->ndata = n;
        for (uint32_t i = 0; i < n && i < 4; i++)
            e->data[i] = run->internal.data[i];
        break;
    }
    case KVM_EXIT_FAIL_ENTRY:
        e->kind = MV_EXIT_FAIL_ENTRY;
        e->fail_reason = run->fail_entry.hardware_entry_failure_reason;
        break;
    case KVM_EXIT_SYSTEM_EVENT:
        e->kind = MV_EXIT_SYSTEM_EVENT;
        e->event_type = run->system_event.type;
        break;
    case KVM_EXIT_INTR:
        e->kind = MV_EXIT_INTR;
        break;
    default:
        e->kind = MV_EXIT_OTHER;
        break;
    }
    ok(msg, msglen);
    return 0;
}

void mv_vcpu_request_exit(mv_vcpu *vcpu, int on)
{
    if (vcpu != NULL)
        __atomic_store_n(&vcpu->run->immediate_exit, on ? 1 : 0, __ATOMIC_SEQ_CST);
}

int mv_vcpu_complete_io_in(mv_vcpu *vcpu, const void *data, uint32_t len,
                           char *msg, size_t msglen)
{
    if (vcpu == NULL || (data == NULL && len > 0))
        return fail(msg, msglen, EINVAL, "mv_vcpu_complete_io_in: bad arguments");
    struct kvm_run *run = vcpu->run;
    if (run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_IN)
        return fail(msg, msglen, EPROTO, "no IO-in exit is pending");
    uint64_t bytes = (uint64_t)run->io.size * run->io.count;
    if (len != bytes)
        return fail(msg, msglen, EINVAL, "IO-in completion of %u bytes, exit wants %llu", len,
                    (unsigned long long)bytes);
    if (run->io.data_offset > vcpu->run_size || bytes > vcpu->run_size - run->io.data_offset)
        return fail(msg, msglen, EPROTO, "KVM_EXIT_IO with a malformed data area");
    memcpy((uint8_t *)run + run->io.data_offset, data, len);
    ok(msg, msglen);
    return 0;
}

int mv_vcpu_complete_mmio_read(mv_vcpu *vcpu, const void *data, uint32_t len,
                               char *msg, size_t msglen)
{
    if (vcpu == NULL || (data == NULL && len > 0))
        return fail(msg, msglen, EINVAL, "mv_vcpu_complete_mmio_read: bad arguments");
    struct kvm_run *run = vcpu->run;
    if (run->exit_reason != KVM_EXIT_MMIO || run->mmio.is_write)
        return fail(msg, msglen, EPROTO, "no MMIO read exit is pending");
    if (len != run->mmio.len || len > sizeof(run->mmio.data))
        return fail(msg, msglen, EINVAL, "MMIO read completion of %u bytes, exit wants %u", len,
                    run->mmio.len);
    memcpy(run->mmio.data, data, len);
    ok(msg, msglen);
    return 0;
}
