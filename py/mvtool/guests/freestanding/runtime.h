/*
 * Freestanding runtime: port and MMIO access, serial output on COM1, exit through the
 * debug-exit port, and the few libc functions the compiler may call.
 */
#ifndef MVGUEST_RUNTIME_H
#define MVGUEST_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "platform.h"

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* Compiler barrier: orders the guest's stores to rings and registers (x86 keeps stores in
 * program order, so nothing stronger is needed between ring writes and the notify). */
static inline void barrier(void)
{
    __asm__ volatile("" : : : "memory");
}

/* MMIO: plain 64-bit addressed loads/stores (each is one VM exit). */
static inline uint32_t mmio_read32(uint64_t addr)
{
    return *(volatile uint32_t *)(uintptr_t)addr;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
    *(volatile uint32_t *)(uintptr_t)addr = v;
}

static inline uint8_t mmio_read8(uint64_t addr)
{
    return *(volatile uint8_t *)(uintptr_t)addr;
}

static inline void mmio_write8(uint64_t addr, uint8_t v)
{
    *(volatile uint8_t *)(uintptr_t)addr = v;
}

/* Serial output (COM1, polled). */
void putc_serial(char c);
void puts_serial(const char *s);                /* no newline added */
void put_hex(uint64_t v);                       /* 0x-prefixed, minimal digits */
void put_dec(uint64_t v);
/* Print "<a><b>\n" — the usual shape of one report line. */
void put_line(const char *a, const char *b);

/* Stop the VM: write `code` to the debug-exit port (the VMM ends the run), then halt. */
__attribute__((noreturn)) void fs_exit(int code);

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
