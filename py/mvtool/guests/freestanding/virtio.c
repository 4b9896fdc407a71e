/* Minimal virtio-mmio driver: see virtio.h. */
#include "virtio.h"

uint32_t vio_read(uint64_t base, uint32_t off)
{
    return mmio_read32(base + off);
}

void vio_write(uint64_t base, uint32_t off, uint32_t value)
{
    barrier();
    mmio_write32(base + off, value);
    barrier();
}

uint32_t vio_config_read32(uint64_t base, uint32_t off)
{
    return mmio_read32(base + VIRTIO_MMIO_CONFIG + off);
}

uint64_t vio_config_read64(uint64_t base, uint32_t off)
{
    uint32_t gen, lo, hi;
    do { /* VirtIO 1.2 §4.2.2.2: re-read while ConfigGeneration changes */
        gen = vio_read(base, VIRTIO_MMIO_CONFIG_GENERATION);
        lo = vio_config_read32(base, off);
        hi = vio_config_read32(base, off + 4);
    } while (gen != vio_read(base, VIRTIO_MMIO_CONFIG_GENERATION));
    return (uint64_t)hi << 32 | lo;
}

uint32_t vio_status(uint64_t base)
{
    return vio_read(base, VIRTIO_MMIO_STATUS);
}

uint64_t vio_device_features(uint64_t base)
{
    vio_write(base, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    uint64_t hi = vio_read(base, VIRTIO_MMIO_DEVICE_FEATURES);
    vio_write(base, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t lo = vio_read(base, VIRTIO_MMIO_DEVICE_FEATURES);
    return hi << 32 | lo;
}

int vio_probe(uint64_t base, uint32_t device_id)
{
    if (vio_read(base, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC)
        return -1;
    if (vio_read(base, VIRTIO_MMIO_VERSION) != 2)
        return -1;
    return vio_read(base, VIRTIO_MMIO_DEVICE_ID) == device_id ? 0 : -1;
}

int vio_negotiate(uint64_t base, uint64_t features)
{
    vio_reset(base);
    vio_write(base, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    vio_write(base, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    vio_write(base, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    vio_write(base, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    vio_write(base, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    vio_write(base, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    vio_write(base, VIRTIO_MMIO_STATUS,
              VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    return (vio_status(base) & VIRTIO_STATUS_FEATURES_OK) ? 0 : -1;
}

int vio_queue_setup(struct vq *q, uint64_t base, uint32_t index, uint32_t num,
                    uint64_t desc, uint64_t avail, uint64_t used)
{
    vio_write(base, VIRTIO_MMIO_QUEUE_SEL, index);
    uint32_t max = vio_read(base, VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (max == 0 || num > max)
        return -1;
    q->base = base;
    q->index = index;
    q->num = num;
    q->desc = (volatile struct vring_desc *)(uintptr_t)desc;
    q->avail = (volatile struct vring_avail *)(uintptr_t)avail;
    q->used = (volatile struct vring_used *)(uintptr_t)used;
    q->avail_idx = 0;
    q->used_seen = 0;
    memset((void *)(uintptr_t)desc, 0, VRING_DESC_BYTES(num));
    memset((void *)(uintptr_t)avail, 0, VRING_AVAIL_BYTES(num));
    memset((void *)(uintptr_t)used, 0, VRING_USED_BYTES(num));
    vio_write(base, VIRTIO_MMIO_QUEUE_NUM, num);
    vio_write(base, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    vio_write(base, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    vio_write(base, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
    vio_write(base, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
    vio_write(base, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
    vio_write(base, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
    vio_write(base, VIRTIO_MMIO_QUEUE_READY, 1);
    return vio_read(base, VIRTIO_MMIO_QUEUE_READY) == 1 ? 0 : -1;
}

uint32_t vio_driver_ok(uint64_t base)
{
    vio_write(base, VIRTIO_MMIO_STATUS,
              VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK
                  | VIRTIO_STATUS_DRIVER_OK);
    return vio_status(base);
}

void vio_reset(uint64_t base)
{
    vio_write(base, VIRTIO_MMIO_STATUS, 0);
}

uint32_t vio_ack_interrupts(uint64_t base)
{
    uint32_t pending = vio_read(base, VIRTIO_MMIO_INTERRUPT_STATUS);
    if (pending)
        vio_write(base, VIRTIO_MMIO_INTERRUPT_ACK, pending);
    return pending;
}

void vq_set_desc(struct vq *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next)
{
    volatile struct vring_desc *d = &q->desc[i];
    d->addr = addr;
    d->len = len;
    d->flags = flags;
    d->next = next;
}

void vq_set_avail_entry(struct vq *q, uint16_t slot, uint16_t head)
{
    q->avail->ring[slot] = head;
}

void vq_set_avail_idx(struct vq *q, uint16_t idx)
{
    barrier();
    q->avail->idx = idx;
    barrier();
}

void vq_push(struct vq *q, uint16_t head)
{
    vq_set_avail_entry(q, (uint16_t)(q->avail_idx % q->num), head);
    q->avail_idx++;
    vq_set_avail_idx(q, q->avail_idx);   /* entry before idx (VirtIO 1.2 §2.7.13) */
}

void vq_notify(struct vq *q)
{
    vio_write(q->base, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

uint16_t vq_used_idx(struct vq *q)
{
    barrier();
    return q->used->idx;
}

int vq_poll_used(struct vq *q, uint32_t *id, uint32_t *len, uint32_t spins)
{
    for (uint32_t i = 0; i <= spins; i++) {
        if (vq_used_idx(q) != q->used_seen) {
            volatile struct vring_used_elem *e = &q->used->ring[q->used_seen % q->num];
            if (id)
                *id = e->id;
            if (len)
                *len = e->len;
            q->used_seen++;
            return 1;
        }
        __asm__ volatile("pause");
    }
    return 0;
}

/* Request header and status byte live here (one request in flight at a time). */
static struct virtio_blk_req_hdr blk_hdr __attribute__((aligned(16)));
static volatile uint8_t blk_status __attribute__((aligned(16)));

int blk_request(struct vq *q, uint32_t type, uint64_t sector, void *data, uint32_t len,
                uint32_t *used_len)
{
    blk_hdr.type = type;
    blk_hdr.reserved = 0;
    blk_hdr.sector = sector;
    blk_status = 0xff;
    uint16_t status_desc = 1;
    vq_set_desc(q, 0, (uint64_t)(uintptr_t)&blk_hdr, sizeof blk_hdr, VRING_DESC_F_NEXT, 1);
    if (len) {
        uint16_t flags = VRING_DESC_F_NEXT;
        if (type != VIRTIO_BLK_T_OUT)
            flags |= VRING_DESC_F_WRITE;
        vq_set_desc(q, 1, (uint64_t)(uintptr_t)data, len, flags, 2);
        status_desc = 2;
    }
    vq_set_desc(q, status_desc, (uint64_t)(uintptr_t)&blk_status, 1, VRING_DESC_F_WRITE, 0);
    vq_push(q, 0);
    vq_notify(q);
    uint32_t id = 0, ulen = 0;
    if (!vq_poll_used(q, &id, &ulen, 1000000) || id != 0)
        return -1;
    if (used_len)
        *used_len = ulen;
    barrier();
    return blk_status;
}
