#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include "CLinuxCalls.h"

int pitchfilter_rename_exchange(const char *first, const char *second) {
    return renameat2(AT_FDCWD, first, AT_FDCWD, second, RENAME_EXCHANGE);
}

int pitchfilter_rename_noreplace(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}
