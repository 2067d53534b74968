/* main.c - personalities and command line (being written). */
#include "compat.h"

#include <stdio.h>

int main(void)
{
    printf("postoffice %s\n", PO_VERSION);
    return 0;
}
