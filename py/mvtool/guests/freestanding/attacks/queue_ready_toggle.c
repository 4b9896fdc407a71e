/*
 * QueueReady toggled after DRIVER_OK: queue 0 disabled, its size rewritten while disabled (the
 * way around a device that only refuses writes to a ready queue), enabled again; queue 1
 * disabled. VirtIO 1.2 §4.2.2.3 forbids the driver all of this; the device must ignore it.
 */
#include "attack.h"

static void rewrite(void)
{
    vio_write(DEV, VIRTIO_MMIO_QUEUE_SEL, 0);
    vio_write(DEV, VIRTIO_MMIO_QUEUE_READY, 0);
    vio_write(DEV, VIRTIO_MMIO_QUEUE_NUM, 0xffff);
    vio_write(DEV, VIRTIO_MMIO_QUEUE_READY, 1);
    vio_write(DEV, VIRTIO_MMIO_QUEUE_SEL, 1);
    vio_write(DEV, VIRTIO_MMIO_QUEUE_READY, 0);
}

int main(void)
{
    return register_attack("queue-ready-toggle", rewrite);
}
