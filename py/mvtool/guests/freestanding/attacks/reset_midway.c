/*
 * Reset in the middle of processing (VirtIO 1.2 §2.4): requests are published on queue 0 but not
 * yet notified, the driver resets the device, notifies the now-dead queue, then sets the device
 * up again with its rings elsewhere. After the reset every queue register must read 0, the dead
 * queue must not be processed, the old rings must never be written again, and the re-activated
 * device must serve requests.
 */
#include "attack.h"

#define STALE_USED_IDX 0x5a5a

int main(void)
{
    const char *name = "reset-midway";
    if (setup())
        return setup_failed(name, "driver_ok");
    if (serve(&q0, 3) != 3)
        return setup_failed(name, "baseline");
    step(name, "publish-without-notify");
    plant_read((uint64_t)(uintptr_t)sector_buf, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT);
    vq_push(&q0, 0);
    vq_push(&q0, 0);
    vq_push(&q0, 0);
    step(name, "reset");
    vio_reset(DEV);
    uint32_t st_reset = vio_status(DEV);
    struct qregs r0 = queue_regs(0), r1 = queue_regs(1);
    int cleared = st_reset == 0 && !r0.num && !r0.ready && !r0.desc && !r0.driver && !r0.device
        && !r1.num && !r1.ready && !r1.desc && !r1.driver && !r1.device;
    /* mark the old used ring, then poke the dead queue */
    struct vq old = q0;
    old.used->idx = STALE_USED_IDX;
    step(name, "notify-dead-queue");
    vq_notify(&old);
    uint32_t st_dead = vio_status(DEV);
    step(name, "reactivate-elsewhere");
    int rc = setup_at(ALT_OFFSET);
    uint32_t s0 = rc ? 0 : serve(&q0, FOLLOW_UP);
    uint32_t s1 = rc ? 0 : serve(&q1, 2);
    /* a device that kept the old configuration would have written the old used ring */
    int old_untouched = old.used->idx == STALE_USED_IDX;
    uint32_t st = vio_status(DEV);
    verdict_begin(name);
    kv_str("after_reset", cleared ? "cleared" : "not-cleared");
    kv("status_after_reset", st_reset);
    kv("status_dead_notify", st_dead);
    kv_str("old_rings", old_untouched ? "untouched" : "written");
    kv_dec("served_q0", s0);
    kv_dec("of_q0", FOLLOW_UP);
    kv_dec("served_q1", s1);
    kv("status", st);
    int absorbed = cleared && st_dead == 0 && old_untouched && s0 == FOLLOW_UP && s1 == 2
        && st == 0xf;
    return verdict_end(absorbed ? EXIT_ABSORBED : EXIT_TOOK_EFFECT);
}
