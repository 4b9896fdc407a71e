/*
 * Shared scaffolding of the CVE-2026-5747 attack guests (one payload per .c file here).
 *
 * Every payload drives virtio-blk device 0 with the driver library (../virtio.h): handshake,
 * queues 0 and 1 configured and enabled, DRIVER_OK — then does what a hostile root guest does,
 * reads back what the device now reports, and submits ordinary read requests so that the device
 * actually uses whatever configuration it holds (that is where the pre-fix VMM wrote out of
 * bounds). Progress goes to the serial console as `STEP <name> <what>` lines; the verdict is
 * one machine-readable line
 *
 *     ATTACK <name> observed key=value ...
 *
 * and the exit code: 0 when the device absorbed the attack (writes ignored or chain refused
 * with DEVICE_NEEDS_RESET, every ordinary request served with the right data), 1 when the guest
 * saw the attack take effect, 2 when the device could not even be set up.
 *
 * The disk the VMM attaches holds a known pattern (byte j of sector s is s*13 + j*7 + 1,
 * written by `mvtool attack`), so every request's data is checked.
 */
#ifndef MVGUEST_ATTACK_H
#define MVGUEST_ATTACK_H

#include <stdint.h>

#include "runtime.h"
#include "virtio.h"

#define DEV VIRTIO_DEVICE_BASE(0)
/* Queue size of both queues: small, so that a few requests wrap the rings. */
#define QSIZE 8u
/* Ring placement in guest RAM (the binary lives at 2 MiB; RAM is 16 MiB). */
#define Q0_DESC 0x400000ull
#define Q0_AVAIL 0x401000ull
#define Q0_USED 0x402000ull
#define Q1_DESC 0x410000ull
#define Q1_AVAIL 0x411000ull
#define Q1_USED 0x412000ull
/* Where the rings move after a reset (reset_midway). */
#define ALT_OFFSET 0x20000ull
/* RAM the VMM gives attack guests (mvtool attack runs them with 16 MiB). */
#define GUEST_RAM_SIZE 0x1000000ull
/* A guest-physical address outside RAM and outside every MMIO window. */
#define OUTSIDE_RAM 0x100000000ull
/* Ordinary requests submitted after an attack: enough to wrap a ring of QSIZE twice. */
#define FOLLOW_UP (2 * QSIZE + 2)

#define EXIT_ABSORBED 0
#define EXIT_TOOK_EFFECT 1
#define EXIT_SETUP_FAILED 2

/* Helpers live in this header; each payload uses some of them. */
#define ATTACK_API static __attribute__((unused))

static struct vq q0, q1;
static uint8_t sector_buf[512] __attribute__((aligned(512)));
static uint64_t next_sector;

static inline uint8_t pattern(uint64_t sector, uint32_t j)
{
    return (uint8_t)(sector * 13 + j * 7 + 1);
}

ATTACK_API void step(const char *name, const char *what)
{
    puts_serial("STEP ");
    puts_serial(name);
    putc_serial(' ');
    puts_serial(what);
    putc_serial('\n');
}

/* --- the verdict line ---------------------------------------------------------------- */
ATTACK_API void verdict_begin(const char *name)
{
    puts_serial("ATTACK ");
    puts_serial(name);
    puts_serial(" observed");
}

ATTACK_API void kv(const char *key, uint64_t value)
{
    putc_serial(' ');
    puts_serial(key);
    putc_serial('=');
    put_hex(value);
}

ATTACK_API void kv_dec(const char *key, uint64_t value)
{
    putc_serial(' ');
    puts_serial(key);
    putc_serial('=');
    put_dec(value);
}

ATTACK_API void kv_str(const char *key, const char *value)
{
    putc_serial(' ');
    puts_serial(key);
    putc_serial('=');
    puts_serial(value);
}

ATTACK_API int verdict_end(int code)
{
    kv_dec("exit", (uint64_t)code);
    putc_serial('\n');
    return code;
}

ATTACK_API int setup_failed(const char *name, const char *what)
{
    verdict_begin(name);
    kv_str("setup_failed", what);
    kv("status", vio_status(DEV));
    return verdict_end(EXIT_SETUP_FAILED);
}

/* --- device setup --------------------------------------------------------------------- */
/* Handshake, queues 0 and 1 at their home (+offset), DRIVER_OK. 0 when the device is live. */
ATTACK_API int setup_at(uint64_t offset)
{
    if (vio_probe(DEV, VIRTIO_ID_BLOCK))
        return -1;
    if (vio_negotiate(DEV, VIRTIO_F_VERSION_1))
        return -2;
    if (vio_queue_setup(&q0, DEV, 0, QSIZE, Q0_DESC + offset, Q0_AVAIL + offset,
                        Q0_USED + offset))
        return -3;
    if (vio_queue_setup(&q1, DEV, 1, QSIZE, Q1_DESC + offset, Q1_AVAIL + offset,
                        Q1_USED + offset))
        return -4;
    uint32_t st = vio_driver_ok(DEV);
    return st == (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK
                  | VIRTIO_STATUS_DRIVER_OK) ? 0 : -5;
}

ATTACK_API int setup(void)
{
    return setup_at(0);
}

/* --- ordinary requests ------------------------------------------------------------------ */
/* Read one sector and check its pattern: 0 ok, -1 not served, -2 bad status, -3 bad data. */
ATTACK_API int read_sector(struct vq *q, uint64_t sector)
{
    memset(sector_buf, 0, sizeof sector_buf);
    uint32_t used_len = 0;
    int st = blk_request(q, VIRTIO_BLK_T_IN, sector, sector_buf, sizeof sector_buf, &used_len);
    if (st < 0)
        return -1;
    if (st != VIRTIO_BLK_S_OK)
        return -2;
    for (uint32_t j = 0; j < sizeof sector_buf; j++)
        if (sector_buf[j] != pattern(sector, j))
            return -3;
    return 0;
}

/* Submit `n` ordinary reads on `q`; returns how many were served correctly. */
ATTACK_API uint32_t serve(struct vq *q, uint32_t n)
{
    uint32_t ok = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (read_sector(q, next_sector++ % 64) == 0)
            ok++;
        else
            break;   /* the queue is out of step once a request was lost */
    }
    return ok;
}

/* --- queue registers as the device reports them --------------------------------------- */
struct qregs {
    uint32_t num, ready;
    uint64_t desc, driver, device;
};

ATTACK_API uint64_t read64(uint32_t lo)
{
    return (uint64_t)vio_read(DEV, lo + 4) << 32 | vio_read(DEV, lo);
}

ATTACK_API struct qregs queue_regs(uint32_t sel)
{
    struct qregs r;
    vio_write(DEV, VIRTIO_MMIO_QUEUE_SEL, sel);
    r.num = vio_read(DEV, VIRTIO_MMIO_QUEUE_NUM);
    r.ready = vio_read(DEV, VIRTIO_MMIO_QUEUE_READY);
    r.desc = read64(VIRTIO_MMIO_QUEUE_DESC_LOW);
    r.driver = read64(VIRTIO_MMIO_QUEUE_DRIVER_LOW);
    r.device = read64(VIRTIO_MMIO_QUEUE_DEVICE_LOW);
    return r;
}

ATTACK_API int same_as_programmed(const struct qregs *r, const struct vq *q)
{
    return r->num == q->num && r->ready == 1
        && r->desc == (uint64_t)(uintptr_t)q->desc
        && r->driver == (uint64_t)(uintptr_t)q->avail
        && r->device == (uint64_t)(uintptr_t)q->used;
}

ATTACK_API void write64(uint32_t lo, uint64_t v)
{
    vio_write(DEV, lo, (uint32_t)v);
    vio_write(DEV, lo + 4, (uint32_t)(v >> 32));
}

/* --- the register-rewrite attack (CVE-2026-5747) --------------------------------------- */
/*
 * Setup, one ordinary request on each queue, then `rewrite()` (the hostile writes, made
 * while DRIVER_OK is set), then read both queues' registers back and submit FOLLOW_UP
 * ordinary requests on queue 0 and two on queue 1.
 */
ATTACK_API int register_attack(const char *name, void (*rewrite)(void))
{
    int rc = setup();
    if (rc)
        return setup_failed(name, rc == -5 ? "driver_ok" : "queues");
    step(name, "baseline");
    uint32_t base0 = serve(&q0, 1), base1 = serve(&q1, 1);
    if (base0 != 1 || base1 != 1)
        return setup_failed(name, "baseline");
    step(name, "rewrite");
    rewrite();
    step(name, "readback");
    struct qregs r0 = queue_regs(0), r1 = queue_regs(1);
    int unchanged = same_as_programmed(&r0, &q0) && same_as_programmed(&r1, &q1);
    step(name, "serve");
    uint32_t s0 = serve(&q0, FOLLOW_UP);
    uint32_t s1 = serve(&q1, 2);
    uint32_t st = vio_status(DEV);
    int absorbed = unchanged && s0 == FOLLOW_UP && s1 == 2 && st == 0xf;
    verdict_begin(name);
    kv_str("rewrite", unchanged ? "ignored" : "accepted");
    kv("q0_num", r0.num);
    kv("q0_ready", r0.ready);
    kv("q0_desc", r0.desc);
    kv("q0_driver", r0.driver);
    kv("q0_device", r0.device);
    kv("q1_num", r1.num);
    kv("q1_ready", r1.ready);
    kv_dec("served_q0", s0);
    kv_dec("of_q0", FOLLOW_UP);
    kv_dec("served_q1", s1);
    kv("status", st);
    return verdict_end(absorbed ? EXIT_ABSORBED : EXIT_TOOK_EFFECT);
}

/* --- hostile ring contents ---------------------------------------------------------------- */
/*
 * For each case: setup, one ordinary request, then `plant(i)` puts hostile entries in queue 0's
 * rings and notifies. The device must not complete the chain (no used element), must set
 * DEVICE_NEEDS_RESET (or ignore the notification), and must work again after a reset.
 */
ATTACK_API int ring_attack(const char *name, uint32_t cases, const char *(*plant)(uint32_t i))
{
    uint32_t refused = 0, needs_reset = 0, recovered = 0;
    for (uint32_t i = 0; i < cases; i++) {
        int rc = setup();
        if (rc || serve(&q0, 1) != 1)
            return setup_failed(name, "baseline");
        uint16_t used_before = vq_used_idx(&q0);
        const char *what = plant(i);
        step(name, what);
        vq_notify(&q0);
        uint16_t used_after = vq_used_idx(&q0);
        uint32_t st = vio_status(DEV);
        if (used_after == used_before)
            refused++;
        if (st & VIRTIO_STATUS_NEEDS_RESET)
            needs_reset++;
        /* recovery: reset, set up again, ordinary requests work */
        vio_reset(DEV);
        if (setup() == 0 && serve(&q0, QSIZE + 1) == QSIZE + 1 && serve(&q1, 1) == 1)
            recovered++;
        vio_reset(DEV);
    }
    verdict_begin(name);
    kv_dec("cases", cases);
    kv_dec("refused", refused);
    kv_dec("needs_reset", needs_reset);
    kv_dec("recovered", recovered);
    int absorbed = refused == cases && recovered == cases;
    return verdict_end(absorbed ? EXIT_ABSORBED : EXIT_TOOK_EFFECT);
}

/* Header + data + status descriptors of an ordinary read in slots 0..2 of queue 0, with the
 * data descriptor replaced by (addr, len, flags). Buffers: the library's and sector_buf. */
static struct virtio_blk_req_hdr ring_hdr __attribute__((aligned(16), unused));
static volatile uint8_t ring_status __attribute__((aligned(16), unused));

ATTACK_API void plant_read(uint64_t data_addr, uint32_t data_len, uint16_t data_flags)
{
    ring_hdr.type = VIRTIO_BLK_T_IN;
    ring_hdr.reserved = 0;
    ring_hdr.sector = 1;
    ring_status = 0xff;
    vq_set_desc(&q0, 0, (uint64_t)(uintptr_t)&ring_hdr, sizeof ring_hdr, VRING_DESC_F_NEXT, 1);
    vq_set_desc(&q0, 1, data_addr, data_len, data_flags, 2);
    vq_set_desc(&q0, 2, (uint64_t)(uintptr_t)&ring_status, 1, VRING_DESC_F_WRITE, 0);
}

#endif
