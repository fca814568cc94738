#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <stdio.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include "CLinuxCalls.h"

const char *pitchfilter_dirent_name(const struct dirent *entry) {
    return entry->d_name;
}

int pitchfilter_rename_exchange(const char *first, const char *second) {
    return renameat2(AT_FDCWD, first, AT_FDCWD, second, RENAME_EXCHANGE);
}

int pitchfilter_open_path_nofollow(const char *path) {
    return open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
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

int pitchfilter_can_allocate(unsigned long bytes) {
    // Mapped and unmapped, not malloc'd and freed: malloc raises its threshold for mapping blocks of their own to
    // the size of a mapped block freed, which moved the next allocations into the heap and made the filter need
    // 17 MB more address space to tag a 26 MB message. The same limits (ulimit -v, strict overcommit) apply.
    void *block = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (block == MAP_FAILED) return 0;
    munmap(block, bytes);
    return 1;
}

int pitchfilter_directory_identity(const char *path, unsigned long long *inode, long long *born) {
    struct statx info;
    if (statx(AT_FDCWD, path, 0, STATX_TYPE | STATX_INO | STATX_BTIME, &info) != 0) {
        // A kernel without statx, or a seccomp filter that refuses it: the number alone, as stat(2) gives it.
        if (errno != ENOSYS && errno != EPERM) return -1;
        struct stat plain;
        if (stat(path, &plain) != 0) return -1;
        if (!S_ISDIR(plain.st_mode)) return 1;
        *inode = plain.st_ino;
        *born = 0;
        return 0;
    }
    if (!(info.stx_mask & STATX_TYPE) || !S_ISDIR(info.stx_mode)) return 1;
    *inode = info.stx_ino;
    *born = (info.stx_mask & STATX_BTIME)
        ? (long long)info.stx_btime.tv_sec * 1000000000LL + (long long)info.stx_btime.tv_nsec : 0;
    return 0;
}
