/*
 * blktest: drive virtio-blk device 0 through a full session and report each step on the
 * serial console, one machine-readable line per step:
 *
 *   BLKTEST <step> ok [key=value ...]        the step passed
 *   BLKTEST <step> FAIL [key=value ...]      it did not
 *   BLKTEST RESULT pass|fail                 last line; the exit code is 0 / 1
 *
 * Steps: probe, features, queue, driver_ok, capacity, write (PATTERN_SECTORS sectors of
 * blk_pattern() at sector capacity/2), read (read back and compare), range (a read past the
 * end must fail with IOERR), get_id, flush, interrupt (InterruptStatus shows used buffers).
 */
#include "virtio.h"

#define QSIZE 16
#define PATTERN_SECTORS 2
#define PATTERN_BYTES (PATTERN_SECTORS * 512)

static struct vring_desc ring_desc[QSIZE] __attribute__((aligned(4096)));
static uint8_t ring_avail[VRING_AVAIL_BYTES(QSIZE)] __attribute__((aligned(4096)));
static uint8_t ring_used[VRING_USED_BYTES(QSIZE)] __attribute__((aligned(4096)));
static uint8_t out_buf[PATTERN_BYTES] __attribute__((aligned(4096)));
static uint8_t in_buf[PATTERN_BYTES] __attribute__((aligned(4096)));
static char id_buf[VIRTIO_BLK_ID_BYTES + 1];

static int failures;

/* The byte at offset i of the pattern (tests/test_freestanding_blktest.py computes the same). */
static uint8_t blk_pattern(uint32_t i)
{
    return (uint8_t)(i * 31u + 7u + (i >> 8));
}

static void step(const char *name, int ok)
{
    puts_serial("BLKTEST ");
    puts_serial(name);
    puts_serial(ok ? " ok" : " FAIL");
    if (!ok)
        failures++;
}

static void kv(const char *key, uint64_t value)
{
    putc_serial(' ');
    puts_serial(key);
    putc_serial('=');
    put_dec(value);
}

static int finish(void)
{
    put_line("BLKTEST RESULT ", failures ? "fail" : "pass");
    return failures ? 1 : 0;
}

int main(void)
{
    uint64_t base = VIRTIO_DEVICE_BASE(0);
    struct vq q;

    int ok = vio_probe(base, VIRTIO_ID_BLOCK) == 0;
    step("probe", ok);
    kv("device_id", vio_read(base, VIRTIO_MMIO_DEVICE_ID));
    putc_serial('\n');
    if (!ok)
        return finish();

    uint64_t offered = vio_device_features(base);
    uint64_t wanted = VIRTIO_F_VERSION_1 | (offered & VIRTIO_BLK_F_FLUSH);
    ok = (offered & VIRTIO_F_VERSION_1) && vio_negotiate(base, wanted) == 0;
    step("features", ok);
    puts_serial(" offered=");
    put_hex(offered);
    kv("ro", (offered & VIRTIO_BLK_F_RO) != 0);
    putc_serial('\n');
    if (!ok)
        return finish();

    ok = vio_queue_setup(&q, base, 0, QSIZE, (uint64_t)(uintptr_t)ring_desc,
                         (uint64_t)(uintptr_t)ring_avail, (uint64_t)(uintptr_t)ring_used) == 0;
    step("queue", ok);
    kv("size", QSIZE);
    putc_serial('\n');
    if (!ok)
        return finish();

    uint32_t status = vio_driver_ok(base);
    ok = status == (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER
                    | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    step("driver_ok", ok);
    kv("status", status);
    putc_serial('\n');
    if (!ok)
        return finish();

    uint64_t capacity = vio_config_read64(base, 0);
    ok = capacity >= 2 * PATTERN_SECTORS;
    step("capacity", ok);
    kv("sectors", capacity);
    putc_serial('\n');
    if (!ok)
        return finish();

    uint64_t sector = capacity / 2;
    for (uint32_t i = 0; i < PATTERN_BYTES; i++)
        out_buf[i] = blk_pattern(i);
    uint32_t used_len = 0;
    int st = blk_request(&q, VIRTIO_BLK_T_OUT, sector, out_buf, PATTERN_BYTES, &used_len);
    step("write", st == VIRTIO_BLK_S_OK);
    kv("sector", sector);
    kv("bytes", PATTERN_BYTES);
    kv("status", (uint64_t)(st & 0xff));
    putc_serial('\n');

    memset(in_buf, 0, sizeof in_buf);
    st = blk_request(&q, VIRTIO_BLK_T_IN, sector, in_buf, PATTERN_BYTES, &used_len);
    int same = memcmp(in_buf, out_buf, PATTERN_BYTES) == 0;
    step("read", st == VIRTIO_BLK_S_OK && same && used_len == PATTERN_BYTES + 1);
    kv("status", (uint64_t)(st & 0xff));
    kv("match", same);
    kv("used_len", used_len);
    putc_serial('\n');

    st = blk_request(&q, VIRTIO_BLK_T_IN, capacity, in_buf, 512, &used_len);
    step("range", st == VIRTIO_BLK_S_IOERR);
    kv("status", (uint64_t)(st & 0xff));
    putc_serial('\n');

    memset(id_buf, 0, sizeof id_buf);
    st = blk_request(&q, VIRTIO_BLK_T_GET_ID, 0, id_buf, VIRTIO_BLK_ID_BYTES, &used_len);
    step("get_id", st == VIRTIO_BLK_S_OK && id_buf[0] != 0);
    kv("status", (uint64_t)(st & 0xff));
    puts_serial(" id=");
    puts_serial(id_buf);
    putc_serial('\n');

    st = blk_request(&q, VIRTIO_BLK_T_FLUSH, 0, 0, 0, &used_len);
    step("flush", st == VIRTIO_BLK_S_OK);
    kv("status", (uint64_t)(st & 0xff));
    putc_serial('\n');

    uint32_t pending = vio_ack_interrupts(base);
    step("interrupt", (pending & 1) != 0 && vio_read(base, VIRTIO_MMIO_INTERRUPT_STATUS) == 0);
    kv("pending", pending);
    putc_serial('\n');

    status = vio_status(base);
    step("status", status == (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER
                              | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK));
    kv("status", status);
    putc_serial('\n');

    vio_reset(base);
    return finish();
}
