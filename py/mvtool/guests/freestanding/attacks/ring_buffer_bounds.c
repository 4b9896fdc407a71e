/*
 * Hostile buffers (VirtIO 1.2 §2.7.5; guest memory is adversarial input): a data descriptor of
 * length 0xffffffff, one outside guest RAM, one whose end wraps around the 64-bit address space,
 * one straddling the end of RAM, and an indirect descriptor (VIRTIO_F_INDIRECT_DESC was not
 * offered). The device must refuse each chain and work again after a reset.
 */
#include "attack.h"

static const char *plant(uint32_t i)
{
    uint16_t w = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT;
    const char *what;
    switch (i) {
    case 0:
        plant_read((uint64_t)(uintptr_t)sector_buf, 0xffffffffu, w);
        what = "len=0xffffffff";
        break;
    case 1:
        plant_read(OUTSIDE_RAM, 512, w);
        what = "addr=outside-ram";
        break;
    case 2:
        plant_read(0xfffffffffffff000ull, 0x2000, w);
        what = "addr+len-wraps";
        break;
    case 3:
        plant_read(GUEST_RAM_SIZE - 256, 512, w);
        what = "straddles-ram-end";
        break;
    default:
        plant_read((uint64_t)(uintptr_t)sector_buf, 512, w | VRING_DESC_F_INDIRECT);
        what = "indirect";
        break;
    }
    vq_push(&q0, 0);
    return what;
}

int main(void)
{
    return ring_attack("ring-buffer-bounds", 5, plant);
}
