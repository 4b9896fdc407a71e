/*
 * Unit tests of the shim's bounds checks, built with -fsanitize=address,undefined by
 * tests/test_shim.py. Exit status 0 when every check holds; each failure prints one line.
 * Usage: test_mvshim [KVM_DEVICE]   (the guest-memory part is skipped if the device is unusable)
 */
#define _GNU_SOURCE
#include "mvshim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                         \
            failures++;                                                                    \
        }                                                                                  \
    } while (0)

static void test_range_check(void)
{
    const uint64_t size = 0x100000;
    CHECK(mv_range_check(size, 0, 0) == 0);
    CHECK(mv_range_check(size, 0, size) == 0);
    CHECK(mv_range_check(size, size, 0) == 0);
    CHECK(mv_range_check(size, size - 1, 1) == 0);
    CHECK(mv_range_check(size, size - 1, 2) == -EFAULT);
    CHECK(mv_range_check(size, size, 1) == -EFAULT);
    CHECK(mv_range_check(size, size + 1, 0) == -EFAULT);
    CHECK(mv_range_check(size, 0, size + 1) == -EFAULT);
    /* gpa + len wraps around 2^64: must be rejected, not seen as a small range. */
    CHECK(mv_range_check(size, 0x10, UINT64_MAX) == -EFAULT);
    CHECK(mv_range_check(size, UINT64_MAX, 2) == -EFAULT);
    CHECK(mv_range_check(size, UINT64_MAX - 0xf, 0x20) == -EFAULT);
    CHECK(mv_range_check(0, 0, 0) == 0);
    CHECK(mv_range_check(0, 0, 1) == -EFAULT);
    CHECK(mv_range_check(UINT64_MAX, UINT64_MAX, 0) == 0);
    CHECK(mv_range_check(UINT64_MAX, 1, UINT64_MAX) == -EFAULT);
}

static int test_guest_memory(const char *kvm)
{
    char msg[MV_MSG_LEN];
    mv_vm *vm = NULL;
    int rc = mv_vm_create(kvm, &vm, msg, sizeof(msg));
    if (rc != 0) {
        printf("SKIP guest memory: %s\n", msg);
        return 0;
    }
    const uint64_t size = 0x200000;
    uint8_t buf[64];
    /* Before RAM exists every access fails cleanly. */
    CHECK(mv_mem_read(vm, 0, buf, 1, msg, sizeof(msg)) == -ENOMEM);
    CHECK(mv_vm_set_memory(vm, 12345, msg, sizeof(msg)) == -EINVAL);
    CHECK(mv_vm_set_memory(vm, size, msg, sizeof(msg)) == 0);
    CHECK(mv_vm_set_memory(vm, size, msg, sizeof(msg)) == -EEXIST);
    CHECK(mv_vm_memory_size(vm) == size);

    memset(buf, 0xab, sizeof(buf));
    CHECK(mv_mem_write(vm, size - sizeof(buf), buf, sizeof(buf), msg, sizeof(msg)) == 0);
    uint8_t back[64];
    memset(back, 0, sizeof(back));
    CHECK(mv_mem_read(vm, size - sizeof(back), back, sizeof(back), msg, sizeof(msg)) == 0);
    CHECK(memcmp(buf, back, sizeof(buf)) == 0);
    /* One byte past the end, wrap-around and far-away addresses: -EFAULT, buffer untouched. */
    memset(back, 0x5a, sizeof(back));
    CHECK(mv_mem_read(vm, size - sizeof(back) + 1, back, sizeof(back), msg, sizeof(msg))
          == -EFAULT);
    CHECK(strstr(msg, "outside RAM") != NULL);
    CHECK(back[0] == 0x5a);
    CHECK(mv_mem_write(vm, size, buf, 1, msg, sizeof(msg)) == -EFAULT);
    CHECK(mv_mem_write(vm, UINT64_MAX - 3, buf, 8, msg, sizeof(msg)) == -EFAULT);
    CHECK(mv_mem_read(vm, 8, back, UINT64_MAX - 4, msg, sizeof(msg)) == -EFAULT);
    CHECK(mv_mem_read(vm, size, back, 0, msg, sizeof(msg)) == 0);

    /* File <-> guest copies. */
    char path[] = "/tmp/mvshim-test-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) {
        unlink(path);
        uint8_t data[4096];
        for (size_t i = 0; i < sizeof(data); i++)
            data[i] = (uint8_t)(i * 7 + 3);
        CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
        uint64_t done = 99;
        CHECK(mv_mem_pread(vm, fd, 0x1000, sizeof(data), 0, &done, msg, sizeof(msg)) == 0);
        CHECK(done == sizeof(data));
        uint8_t got[4096];
        CHECK(mv_mem_read(vm, 0x1000, got, sizeof(got), msg, sizeof(msg)) == 0);
        CHECK(memcmp(got, data, sizeof(data)) == 0);
        /* Short at end of file. */
        CHECK(mv_mem_pread(vm, fd, 0x3000, 100, 4050, &done, msg, sizeof(msg)) == 0);
        CHECK(done == 46);
        /* Out of RAM: nothing transferred. */
        CHECK(mv_mem_pread(vm, fd, size - 10, 100, 0, &done, msg, sizeof(msg)) == -EFAULT);
        CHECK(done == 0);
        CHECK(mv_mem_pwrite(vm, fd, UINT64_MAX - 1, 16, 0, &done, msg, sizeof(msg)) == -EFAULT);
        CHECK(mv_mem_pwrite(vm, fd, 0, 16, -1, &done, msg, sizeof(msg)) == -EINVAL);
        CHECK(mv_mem_pwrite(vm, fd, 0x1000, 512, 8192, &done, msg, sizeof(msg)) == 0);
        CHECK(done == 512);
        uint8_t file_back[512];
        CHECK(pread(fd, file_back, sizeof(file_back), 8192) == (ssize_t)sizeof(file_back));
        CHECK(memcmp(file_back, data, sizeof(file_back)) == 0);
        CHECK(mv_mem_pread(vm, -1, 0, 16, 0, &done, msg, sizeof(msg)) == -EBADF);
        /* Scatter/gather: three guest ranges filled from consecutive file bytes. */
        uint64_t segs[] = {0x5000, 100, 0x7000, 0, 0x6000, 412};
        CHECK(mv_mem_preadv(vm, fd, segs, 3, 8, &done, msg, sizeof(msg)) == 0);
        CHECK(done == 512);
        CHECK(mv_mem_read(vm, 0x5000, got, 100, msg, sizeof(msg)) == 0);
        CHECK(memcmp(got, data + 8, 100) == 0);
        CHECK(mv_mem_read(vm, 0x6000, got, 412, msg, sizeof(msg)) == 0);
        CHECK(memcmp(got, data + 108, 412) == 0);
        /* Short at end of file: the first range full, the second partly. */
        uint64_t tail[] = {0x8000, 16, 0x9000, 64};
        CHECK(mv_mem_preadv(vm, fd, tail, 2, 8192 + 512 - 40, &done, msg, sizeof(msg)) == 0);
        CHECK(done == 40);
        /* One range outside RAM: refused before anything moves. */
        uint8_t zero[64];
        memset(zero, 0, sizeof(zero));
        CHECK(mv_mem_write(vm, 0xa000, zero, sizeof(zero), msg, sizeof(msg)) == 0);
        uint64_t bad[] = {0xa000, 64, size - 8, 16};
        CHECK(mv_mem_preadv(vm, fd, bad, 2, 0, &done, msg, sizeof(msg)) == -EFAULT);
        CHECK(done == 0);
        CHECK(mv_mem_read(vm, 0xa000, got, 64, msg, sizeof(msg)) == 0);
        CHECK(memcmp(got, zero, 64) == 0);
        uint64_t wrap[] = {UINT64_MAX - 7, 16};
        CHECK(mv_mem_pwritev(vm, fd, wrap, 1, 0, &done, msg, sizeof(msg)) == -EFAULT);
        CHECK(mv_mem_preadv(vm, fd, segs, MV_SG_MAX + 1, 0, &done, msg, sizeof(msg)) == -EINVAL);
        /* Gather: two guest ranges written back to back into the file. */
        CHECK(mv_mem_pwritev(vm, fd, segs, 3, 16384, &done, msg, sizeof(msg)) == 0);
        CHECK(done == 512);
        CHECK(pread(fd, file_back, sizeof(file_back), 16384) == (ssize_t)sizeof(file_back));
        CHECK(memcmp(file_back, data + 8, sizeof(file_back)) == 0);
        /* More than one bounce buffer's worth (1 MiB), split inside a range. */
        static uint8_t big[0x180000], back_big[0x180000];
        for (size_t i = 0; i < sizeof(big); i++)
            big[i] = (uint8_t)(i * 13 + (i >> 12));
        CHECK(pwrite(fd, big, sizeof(big), 0) == (ssize_t)sizeof(big));
        uint64_t wide[] = {0x40000, 0xC0100, 0x100200, 0xBFF00};
        CHECK(mv_mem_preadv(vm, fd, wide, 2, 0, &done, msg, sizeof(msg)) == 0);
        CHECK(done == sizeof(big));
        CHECK(mv_mem_read(vm, 0x40000, back_big, 0xC0100, msg, sizeof(msg)) == 0);
        CHECK(mv_mem_read(vm, 0x100200, back_big + 0xC0100, 0xBFF00, msg, sizeof(msg)) == 0);
        CHECK(memcmp(back_big, big, sizeof(big)) == 0);
        CHECK(mv_mem_pwritev(vm, fd, wide, 2, 0x180000, &done, msg, sizeof(msg)) == 0);
        CHECK(done == sizeof(big));
        CHECK(pread(fd, back_big, sizeof(back_big), 0x180000) == (ssize_t)sizeof(back_big));
        CHECK(memcmp(back_big, big, sizeof(big)) == 0);
        close(fd);
    }
    mv_vm_destroy(vm);
    return 1;
}

int main(int argc, char **argv)
{
    test_range_check();
    int ran = test_guest_memory(argc > 1 ? argv[1] : "/dev/kvm");
    if (failures == 0)
        printf("OK range checks%s\n", ran ? ", guest memory" : "");
    return failures == 0 ? 0 : 1;
}
