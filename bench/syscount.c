/* Socket syscall counter for bench/run.py: LD_PRELOAD into a server under test.
 *
 * Counts the calls that move bytes on sockets (read, readv, recv, recvfrom, recvmsg; write,
 * writev, send, sendto, sendmsg) and the event-loop waits (epoll_wait, epoll_pwait, poll,
 * select), made through libc by the process and every library in it (CPython, uvloop's libuv,
 * Node's libuv, picows). Calls on files and pipes are left out: each fd's kind is looked up
 * once (fstat) and remembered until close().
 *
 * The counters live in a shared file named by $SIGMA_SYSCOUNT (u64 each, see enum below), so
 * the load generator reads them at the edges of its measured window without stopping the server.
 * A child process that inherits the variable adds to the same counters (the servers here start
 * none). Cost: one atomic add per call; nothing is traced or stopped (strace -c, by contrast, stops the
 * server at every syscall and so changes the pattern it is measuring; /proc/<pid>/io's syscr
 * counts read() but not recv()/recvfrom(), which CPython's sockets use).
 *
 * Build: cc -O2 -shared -fPIC -o syscount.so syscount.c -ldl   (bench/setup.sh does it)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

enum { READS, READS_WITH_DATA, BYTES_READ, WRITES, BYTES_WRITTEN, WAITS, N_COUNTERS };

static uint64_t dummy[N_COUNTERS];
static uint64_t *counters = dummy;
#define MAX_FD 65536
static unsigned char kind[MAX_FD]; /* 0 unknown, 1 socket, 2 other */

static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_close)(int);
static int (*real_epoll_wait)(int, struct epoll_event *, int, int);
static int (*real_epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
static int (*real_poll)(struct pollfd *, nfds_t, int);
static int (*real_select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);

#define LOAD(name) real_##name = dlsym(RTLD_NEXT, #name)

__attribute__((constructor)) static void init(void) {
    LOAD(read); LOAD(readv); LOAD(recv); LOAD(recvfrom); LOAD(recvmsg);
    LOAD(write); LOAD(writev); LOAD(send); LOAD(sendto); LOAD(sendmsg);
    LOAD(close); LOAD(epoll_wait); LOAD(epoll_pwait); LOAD(poll); LOAD(select);
    const char *path = getenv("SIGMA_SYSCOUNT");
    if (!path || !*path) return;
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0) return;
    if (ftruncate(fd, 4096) == 0) {
        void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map != MAP_FAILED) counters = map;
    }
    real_close(fd);
}

static int is_socket(int fd) {
    if (fd < 0 || fd >= MAX_FD) return 0;
    if (!kind[fd]) {
        int saved = errno;
        struct stat st;
        kind[fd] = (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) ? 1 : 2;
        errno = saved;
    }
    return kind[fd] == 1;
}

static void count_read(int fd, ssize_t n) {
    if (!is_socket(fd)) return;
    __atomic_fetch_add(&counters[READS], 1, __ATOMIC_RELAXED);
    if (n > 0) {
        __atomic_fetch_add(&counters[READS_WITH_DATA], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&counters[BYTES_READ], (uint64_t)n, __ATOMIC_RELAXED);
    }
}

static void count_write(int fd, ssize_t n) {
    if (!is_socket(fd)) return;
    __atomic_fetch_add(&counters[WRITES], 1, __ATOMIC_RELAXED);
    if (n > 0) __atomic_fetch_add(&counters[BYTES_WRITTEN], (uint64_t)n, __ATOMIC_RELAXED);
}

ssize_t read(int fd, void *buf, size_t count) {
    ssize_t n = real_read(fd, buf, count); count_read(fd, n); return n;
}
ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
    ssize_t n = real_readv(fd, iov, iovcnt); count_read(fd, n); return n;
}
ssize_t recv(int fd, void *buf, size_t len, int flags) {
    ssize_t n = real_recv(fd, buf, len, flags); count_read(fd, n); return n;
}
ssize_t recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *a, socklen_t *al) {
    ssize_t n = real_recvfrom(fd, buf, len, flags, a, al); count_read(fd, n); return n;
}
ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    ssize_t n = real_recvmsg(fd, msg, flags); count_read(fd, n); return n;
}
ssize_t write(int fd, const void *buf, size_t count) {
    ssize_t n = real_write(fd, buf, count); count_write(fd, n); return n;
}
ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    ssize_t n = real_writev(fd, iov, iovcnt); count_write(fd, n); return n;
}
ssize_t send(int fd, const void *buf, size_t len, int flags) {
    ssize_t n = real_send(fd, buf, len, flags); count_write(fd, n); return n;
}
ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *a,
               socklen_t al) {
    ssize_t n = real_sendto(fd, buf, len, flags, a, al); count_write(fd, n); return n;
}
ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    ssize_t n = real_sendmsg(fd, msg, flags); count_write(fd, n); return n;
}
int close(int fd) {
    if (fd >= 0 && fd < MAX_FD) kind[fd] = 0;
    return real_close(fd);
}
int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout) {
    __atomic_fetch_add(&counters[WAITS], 1, __ATOMIC_RELAXED);
    return real_epoll_wait(epfd, events, maxevents, timeout);
}
int epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout,
                const sigset_t *sigmask) {
    __atomic_fetch_add(&counters[WAITS], 1, __ATOMIC_RELAXED);
    return real_epoll_pwait(epfd, events, maxevents, timeout, sigmask);
}
int poll(struct pollfd *fds, nfds_t nfds, int timeout) {
    __atomic_fetch_add(&counters[WAITS], 1, __ATOMIC_RELAXED);
    return real_poll(fds, nfds, timeout);
}
int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *timeout) {
    __atomic_fetch_add(&counters[WAITS], 1, __ATOMIC_RELAXED);
    return real_select(nfds, r, w, e, timeout);
}
