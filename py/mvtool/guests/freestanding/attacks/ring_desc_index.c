/*
 * Hostile descriptor indices (VirtIO 1.2 §2.7.5; QEMU CVE-2011-2512 class): a head index equal
 * to the queue size, a head of 0xffff, a `next` link past the table, a chain that loops, and an
 * available index more than a queue size ahead of the device. The device must refuse each chain
 * (DEVICE_NEEDS_RESET, nothing completed) and work again after a reset.
 */
#include "attack.h"

static const char *plant(uint32_t i)
{
    uint16_t head = 0;
    const char *what = "";
    plant_read((uint64_t)(uintptr_t)sector_buf, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT);
    switch (i) {
    case 0:
        head = QSIZE;
        what = "head=QSIZE";
        break;
    case 1:
        head = 0xffff;
        what = "head=0xffff";
        break;
    case 2:
        vq_set_desc(&q0, 1, (uint64_t)(uintptr_t)sector_buf, 512,
                    VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, (uint16_t)(QSIZE + 3));
        what = "next=QSIZE+3";
        break;
    case 3:
        /* 0 -> 1 -> 2 -> 1 -> 2 ...: a cycle, bounded only by the chain-length check */
        vq_set_desc(&q0, 2, (uint64_t)(uintptr_t)&ring_status, 1,
                    VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
        what = "chain-cycle";
        break;
    default:
        /* publish an available index QSIZE+1 entries ahead */
        vq_set_avail_entry(&q0, (uint16_t)(q0.avail_idx % q0.num), 0);
        q0.avail_idx = (uint16_t)(q0.avail_idx + QSIZE + 1);
        vq_set_avail_idx(&q0, q0.avail_idx);
        return "avail-idx+QSIZE+1";
    }
    vq_push(&q0, head);
    return what;
}

int main(void)
{
    return ring_attack("ring-desc-index", 5, plant);
}
