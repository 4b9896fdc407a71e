/* Freestanding runtime: see runtime.h. */
#include "runtime.h"

#define LSR_THRE 0x20

void putc_serial(char c)
{
    /* The VMM's UART transmits instantly; the poll keeps the code right on real 8250s. */
    for (int spins = 0; spins < 100000 && !(inb(SERIAL_PORT_BASE + 5) & LSR_THRE); spins++)
        ;
    outb(SERIAL_PORT_BASE, (uint8_t)c);
}

void puts_serial(const char *s)
{
    while (*s)
        putc_serial(*s++);
}

void put_hex(uint64_t v)
{
    char buf[19];
    int i = 18;
    buf[i] = 0;
    do {
        buf[--i] = "0123456789abcdef"[v & 0xf];
        v >>= 4;
    } while (v);
    buf[--i] = 'x';
    buf[--i] = '0';
    puts_serial(&buf[i]);
}

void put_dec(uint64_t v)
{
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    puts_serial(&buf[i]);
}

void put_line(const char *a, const char *b)
{
    puts_serial(a);
    puts_serial(b);
    putc_serial('\n');
}

void fs_exit(int code)
{
    outb(DEBUG_EXIT_PORT, (uint8_t)code);
    for (;;)
        __asm__ volatile("hlt");
}

void *memset(void *d, int c, size_t n)
{
    uint8_t *p = d;
    while (n--)
        *p++ = (uint8_t)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *p = d;
    const uint8_t *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p < *q ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}
