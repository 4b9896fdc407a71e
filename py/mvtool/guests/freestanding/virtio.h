/*
 * A minimal virtio-mmio driver (VirtIO 1.2 §4.2.3, split virtqueues §2.7), built to be taken
 * apart: every step of the handshake is its own function, and rings, descriptors, available
 * entries and registers can be written raw, so test and attack guests can do exactly what a
 * correct driver does — or exactly what it must not.
 *
 * Polling only: the VMM completes requests during the QueueNotify exit, so the used ring is
 * up to date when vq_notify() returns; vq_poll_used() still waits a bounded number of spins.
 */
#ifndef MVGUEST_VIRTIO_H
#define MVGUEST_VIRTIO_H

#include <stdint.h>

#include "runtime.h"

/* Register offsets (VirtIO 1.2 §4.2.2, Linux include/uapi/linux/virtio_mmio.h). */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC 0x74726976u

/* Device status bits (VirtIO 1.2 §2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER 2u
#define VIRTIO_STATUS_DRIVER_OK 4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED 128u

#define VIRTIO_F_VERSION_1 (1ull << 32)

/* Descriptor flags (VirtIO 1.2 §2.7.5). */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} __attribute__((packed));

struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
} __attribute__((packed));

struct vring_used_elem {
    uint32_t id;
    uint32_t len;
} __attribute__((packed));

struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[];
} __attribute__((packed));

/* Bytes of each ring for a queue of `num` entries (VirtIO 1.2 §2.7). */
#define VRING_DESC_BYTES(num) (16u * (num))
#define VRING_AVAIL_BYTES(num) (6u + 2u * (num))
#define VRING_USED_BYTES(num) (6u + 8u * (num))

/* The MMIO window of virtio device `i`. */
#define VIRTIO_DEVICE_BASE(i) ((uint64_t)VIRTIO_MMIO_BASE + (uint64_t)(i) * VIRTIO_MMIO_SIZE)

/* One split virtqueue, as the driver sees it. */
struct vq {
    uint64_t base;                 /* the device's MMIO window */
    uint32_t index;                /* queue index (QueueSel) */
    uint32_t num;                  /* queue size */
    volatile struct vring_desc *desc;
    volatile struct vring_avail *avail;
    volatile struct vring_used *used;
    uint16_t avail_idx;            /* next available index the driver publishes */
    uint16_t used_seen;            /* used entries already consumed */
};

/* --- raw register access ------------------------------------------------------------- */
uint32_t vio_read(uint64_t base, uint32_t off);
void vio_write(uint64_t base, uint32_t off, uint32_t value);
/* Config space (offset from 0x100), 32 bits at a time. */
uint32_t vio_config_read32(uint64_t base, uint32_t off);
uint64_t vio_config_read64(uint64_t base, uint32_t off);   /* two 32-bit reads, low first */
uint32_t vio_status(uint64_t base);
uint64_t vio_device_features(uint64_t base);               /* both feature words */

/* --- the handshake, step by step (VirtIO 1.2 §3.1.1) --------------------------------- */
/* Check magic, version 2 and the device id; 0 or -1. */
int vio_probe(uint64_t base, uint32_t device_id);
/* Reset, ACKNOWLEDGE, DRIVER, write `features` (both words), FEATURES_OK; 0 if FEATURES_OK
 * reads back set, else -1. */
int vio_negotiate(uint64_t base, uint64_t features);
/* Program queue `index` (QueueSel, QueueNum, the three addresses, QueueReady = 1) and fill in
 * `q`; the rings are zeroed. 0, or -1 if the queue does not exist, is too small or did not
 * become ready. */
int vio_queue_setup(struct vq *q, uint64_t base, uint32_t index, uint32_t num,
                    uint64_t desc, uint64_t avail, uint64_t used);
/* Set DRIVER_OK; returns the status read back. */
uint32_t vio_driver_ok(uint64_t base);
/* Write 0 to Status. */
void vio_reset(uint64_t base);
/* Acknowledge every pending interrupt bit; returns the bits that were pending. */
uint32_t vio_ack_interrupts(uint64_t base);

/* --- rings ---------------------------------------------------------------------------- */
void vq_set_desc(struct vq *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next);
/* Raw available-ring writes: entry in slot `slot`, the idx field. */
void vq_set_avail_entry(struct vq *q, uint16_t slot, uint16_t head);
void vq_set_avail_idx(struct vq *q, uint16_t idx);
/* Append `head` at the driver's next index and publish it (entry before idx). */
void vq_push(struct vq *q, uint16_t head);
/* QueueNotify with this queue's index. */
void vq_notify(struct vq *q);
/* The used ring's idx as the device last wrote it. */
uint16_t vq_used_idx(struct vq *q);
/* Wait (at most `spins` polls) for the next used element; 1 (filling id and len) when there is one,
 * 0 on timeout. */
int vq_poll_used(struct vq *q, uint32_t *id, uint32_t *len, uint32_t spins);

/* --- virtio-blk (VirtIO 1.2 §5.2) ---------------------------------------------------- */
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_BLK_F_SEG_MAX (1ull << 2)
#define VIRTIO_BLK_F_RO (1ull << 5)
#define VIRTIO_BLK_F_FLUSH (1ull << 9)
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20

struct virtio_blk_req_hdr {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
} __attribute__((packed));

/* One request laid out as Linux does (descriptors 0, 1, 2: header, data, status; no data
 * descriptor when len is 0), pushed, notified and waited for. Returns the status byte, or -1
 * if no used element came back (*used_len receives the used length when non-NULL). */
int blk_request(struct vq *q, uint32_t type, uint64_t sector, void *data, uint32_t len,
                uint32_t *used_len);

#endif
