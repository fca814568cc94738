#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <sys/fsuid.h>
#include "CLinuxCalls.h"

int pitchfilter_rename_exchange(const char *first, const char *second) {
    return renameat2(AT_FDCWD, first, AT_FDCWD, second, RENAME_EXCHANGE);
}

int pitchfilter_rename_noreplace(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

unsigned pitchfilter_setfsuid(unsigned uid) {
    return (unsigned)setfsuid((uid_t)uid);
}

unsigned pitchfilter_setfsgid(unsigned gid) {
    return (unsigned)setfsgid((gid_t)gid);
}

int pitchfilter_malloc_trim(void) {
    return malloc_trim(0);
}
