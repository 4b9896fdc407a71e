/*
 * Out-of-range QueueSel (QEMU CVE-2011-2512, cloud-hypervisor #7917, rust-vmm vm-virtio #114):
 * select queues 2 and 0xffffffff, write every queue register, read them back. Done once while
 * configuring (before DRIVER_OK) and once while active. A non-existent queue reads as zeros
 * (QueueNumMax 0, VirtIO 1.2 §4.2.2.1) and its writes change nothing; queues 0 and 1 must
 * still work.
 */
#include "attack.h"

static const uint32_t selectors[] = {2, 0xffffffffu};

/* Writes to every queue register of `sel`; returns 1 if any read-back is non-zero. */
static int poke(uint32_t sel)
{
    vio_write(DEV, VIRTIO_MMIO_QUEUE_SEL, sel);
    uint32_t max = vio_read(DEV, VIRTIO_MMIO_QUEUE_NUM_MAX);
    vio_write(DEV, VIRTIO_MMIO_QUEUE_NUM, 0xffff);
    write64(VIRTIO_MMIO_QUEUE_DESC_LOW, OUTSIDE_RAM);
    write64(VIRTIO_MMIO_QUEUE_DRIVER_LOW, Q0_AVAIL);
    write64(VIRTIO_MMIO_QUEUE_DEVICE_LOW, Q0_USED);
    vio_write(DEV, VIRTIO_MMIO_QUEUE_READY, 1);
    struct qregs r = queue_regs(sel);
    vio_write(DEV, VIRTIO_MMIO_QUEUE_NOTIFY, sel);
    return max != 0 || r.num || r.ready || r.desc || r.driver || r.device;
}

int main(void)
{
    const char *name = "queue-sel-out-of-range";
    uint32_t visible = 0;
    /* while configuring: status ACKNOWLEDGE|DRIVER|FEATURES_OK */
    if (vio_probe(DEV, VIRTIO_ID_BLOCK) || vio_negotiate(DEV, VIRTIO_F_VERSION_1))
        return setup_failed(name, "negotiate");
    step(name, "configuring");
    for (unsigned i = 0; i < sizeof selectors / sizeof selectors[0]; i++)
        visible += (uint32_t)poke(selectors[i]);
    if (vio_queue_setup(&q0, DEV, 0, QSIZE, Q0_DESC, Q0_AVAIL, Q0_USED)
        || vio_queue_setup(&q1, DEV, 1, QSIZE, Q1_DESC, Q1_AVAIL, Q1_USED)
        || vio_driver_ok(DEV) != 0xf)
        return setup_failed(name, "driver_ok");
    step(name, "active");
    for (unsigned i = 0; i < sizeof selectors / sizeof selectors[0]; i++)
        visible += (uint32_t)poke(selectors[i]);
    step(name, "readback");
    struct qregs r0 = queue_regs(0), r1 = queue_regs(1);
    int unchanged = same_as_programmed(&r0, &q0) && same_as_programmed(&r1, &q1);
    step(name, "serve");
    uint32_t s0 = serve(&q0, FOLLOW_UP), s1 = serve(&q1, 2);
    uint32_t st = vio_status(DEV);
    verdict_begin(name);
    kv_dec("nonzero_readbacks", visible);
    kv_str("queues", unchanged ? "unchanged" : "changed");
    kv_dec("served_q0", s0);
    kv_dec("of_q0", FOLLOW_UP);
    kv_dec("served_q1", s1);
    kv("status", st);
    int absorbed = visible == 0 && unchanged && s0 == FOLLOW_UP && s1 == 2 && st == 0xf;
    return verdict_end(absorbed ? EXIT_ABSORBED : EXIT_TOOK_EFFECT);
}
