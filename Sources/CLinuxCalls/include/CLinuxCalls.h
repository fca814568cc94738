// Linux calls the Glibc module leaves out (glibc declares them only with _GNU_SOURCE, or in <malloc.h>), and one
// question Swift cannot ask without aborting.
#ifndef CLINUXCALLS_H
#define CLINUXCALLS_H

#include <dirent.h>

/// The name of an entry readdir(3) returned. A record is only as long as its name needs: Swift's
/// `entry.pointee.d_name` copies the whole `struct dirent`, which read past the record, and past the end of the
/// buffer when the record was the last one before an unmapped page (found by an audit: `train` of a SpamAssassin
/// folder died of SIGSEGV in a release build, every time).
const char *pitchfilter_dirent_name(const struct dirent *entry);

/// renameat2(2) with RENAME_EXCHANGE on two paths: swaps the files they name, atomically. -1 and errno on failure
/// (ENOENT when either is gone; EINVAL where the file system cannot exchange).
int pitchfilter_rename_exchange(const char *first, const char *second);

/// renameat2(2) with RENAME_NOREPLACE: rename(2) that fails with EEXIST instead of replacing a file of the new
/// name (EINVAL where the file system cannot tell).
int pitchfilter_rename_noreplace(const char *from, const char *to);

/// setfsuid(2) and setfsgid(2): the identity this thread's file accesses are checked as, without the effective
/// identity (signals, the database) changing. Each returns the thread's previous one; an id the call refuses
/// leaves it and still returns it.
unsigned pitchfilter_setfsuid(unsigned uid);
unsigned pitchfilter_setfsgid(unsigned gid);

/// malloc_trim(3): the free memory of every heap arena, whole pages, given back to the system. 1 if any was.
int pitchfilter_malloc_trim(void);

/// Whether `bytes` more of memory can be had now (a mapping made and taken back), where a Swift allocation that
/// cannot aborts the process. 1 if they could.
int pitchfilter_can_allocate(unsigned long bytes);

/// statx(2) of the directory at `path` (links followed), in one call: its inode number, and its birth time in
/// nanoseconds since 1970 (0 where the file system does not record it), which tells a directory made where another
/// was deleted from the one that was when the new one got the old one's number. Where statx is refused (a seccomp
/// filter: EPERM) or missing (ENOSYS), stat(2)'s number with no birth time. 0 on success; 1 when `path` is not a
/// directory; -1 and errno on failure.
int pitchfilter_directory_identity(const char *path, unsigned long long *inode, long long *born);

/// open(2) with O_PATH | O_NOFOLLOW | O_CLOEXEC: a descriptor for the file `path` names itself, a symbolic link
/// not followed, for fstat and for a chmod through /proc/self/fd that acts on that file alone. -1 and errno on
/// failure.
int pitchfilter_open_path_nofollow(const char *path);

#endif
