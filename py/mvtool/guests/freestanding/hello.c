/* hello: the smallest guest — one line on the serial console, exit code 0. The baseline the
 * other guests' run times are compared with. */
#include "runtime.h"

int main(void)
{
    put_line("HELLO ", "freestanding");
    return 0;
}
