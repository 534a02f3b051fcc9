/*
 * latfs: a read-only FUSE mirror of a directory tree that behaves like a parallel
 * filesystem's metadata server, for benchmarks and tests.
 *
 *   latfs [--latency-ms X] [--readdir-latency-ms Y] [--threads N] [--stats FILE]
 *         [--attr-timeout S] [--entry-timeout S] [--allow-other] [--no-realtime]
 *         [--whole-seconds] SOURCE MOUNTPOINT
 *
 * Every metadata operation (lookup, getattr, opendir, each readdir request, open,
 * readlink) is served by one of N service slots, the metadata server's service
 * threads: it starts on the first slot that is free (waiting in a queue while all N
 * are busy), holds it for X ms, and its reply leaves when that time is over.  So the
 * filesystem serves at most N / X operations per second, and each one takes at least
 * X ms, spent waiting, not computing.
 *
 * The slots are N timelines, not N sleeping threads: an operation is given its slot
 * and its reply time as it arrives, the real work on SOURCE is done at once, and one
 * reply thread sends each reply at its time.  Why: a thread that sleeps the latency
 * for every operation costs tens of microseconds of CPU per operation in wake-ups
 * (measured: 50 us per operation at 1 ms against 16 us without latency), and on a
 * two-core machine that would be what a benchmark measured.
 *
 * The kernel caches no entries and attributes for at most one clock tick (see
 * attr_timeout below): every stat reaches latfs as one LOOKUP, as in a first walk of a
 * Lustre tree.  No default_permissions: the kernel would refresh the parent
 * directory's attributes before every lookup.
 *
 * --whole-seconds shows file times in whole seconds, as Lustre and many NFS servers
 * keep them: a change made later in the second of a stat carries a time before it.
 *
 * Counters live in FILE (--stats), a small shared-memory table of 64-bit integers
 * updated atomically: per operation kind the count, the time queued for a slot, the
 * time from the start of service to the reply, and the CPU of its handler and reply.
 * A benchmark reads it before and after a run and subtracts, which shows how much of
 * what it measured the filesystem itself cost.  benchmarks/latfs/__init__.py reads it.
 *
 * Runs in the foreground; prints "ready" on stdout once mounted; unmount with
 * fusermount3 -u MOUNTPOINT (or SIGTERM), after which it exits 0.
 */
#define FUSE_USE_VERSION 312
#define _GNU_SOURCE

#include <fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* ---- counters (shared memory; layout version 1) ---------------------------------- */

enum op_kind {
    OP_LOOKUP, OP_GETATTR, OP_OPENDIR, OP_READDIR, OP_RELEASEDIR, OP_OPEN, OP_READ,
    OP_RELEASE, OP_READLINK, OP_FORGET, OP_STATFS, OP_KINDS
};

#define STATS_MAGIC 0x3130534654414cULL /* "LATFS01" little-endian */
#define STATS_VERSION 1
#define HEADER_WORDS 16
#define OP_WORDS 4 /* count, queue_ns, wait_ns, cpu_ns */

enum header_word {
    H_MAGIC, H_VERSION, H_KINDS, H_LATENCY_NS, H_READDIR_LATENCY_NS, H_THREADS, H_PID,
    H_IN_SERVICE, H_PEAK_IN_SERVICE, H_READY, H_NODES, H_PRIORITY
};

static uint64_t *stats;

static void stat_add(uint64_t *word, uint64_t value)
{
    __atomic_fetch_add(word, value, __ATOMIC_RELAXED);
}

static uint64_t *op_words(enum op_kind kind)
{
    return stats + HEADER_WORDS + OP_WORDS * kind;
}

static int open_stats(const char *path)
{
    size_t size = sizeof(uint64_t) * (HEADER_WORDS + OP_WORDS * OP_KINDS);
    if (path == NULL) {
        stats = calloc(1, size);
        return stats ? 0 : -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        perror(path);
        return -1;
    }
    stats = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (stats == MAP_FAILED) {
        perror("mmap");
        return -1;
    }
    return 0;
}

/* ---- service slots and the latency -------------------------------------------- */

static uint64_t latency_ns, readdir_latency_ns;
#define HANDLER_THREADS 8
/* Entry timeout 0: every lookup of a name reaches latfs.  Attribute timeout 1 ns, which
 * the kernel rounds up to one clock tick: the attributes a LOOKUP returns serve the stat
 * that asked for them and nothing later.  With 0 the kernel follows every LOOKUP with a
 * GETATTR, two round trips per stat, which a Lustre client does not pay (its lookup
 * intent returns the attributes with the lock). */
static double attr_timeout = 1e-9, entry_timeout = 0.0;

static uint64_t now_ns(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

enum reply_type { R_ERR, R_ENTRY, R_ATTR, R_READLINK, R_OPEN, R_BUF, R_NONE };

/* One operation from its arrival to its reply. */
struct pending {
    struct pending *next;
    fuse_req_t req;
    enum op_kind kind;
    uint64_t cpu_start; /* handler thread CPU at arrival */
    uint64_t start;     /* service start on its slot (monotonic ns) */
    uint64_t due;       /* start + latency: when the reply may leave */
    enum reply_type type;
    int error;
    struct fuse_entry_param entry;
    struct stat attr;
    struct fuse_file_info fi;
    char *buf; /* readdir page, readlink target */
    size_t size;
    void (*undo)(struct pending *); /* the kernel did not take the reply: release what it held */
};

static int is_delayed(enum op_kind kind)
{
    return kind == OP_LOOKUP || kind == OP_GETATTR || kind == OP_OPENDIR || kind == OP_READDIR ||
           kind == OP_OPEN || kind == OP_READLINK;
}

/* The slots' timelines: slot_free[i] is when slot i finishes what it was given. */
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *slot_free;
static long slot_count;

/* Replies wait in two queues, one per latency value: within a queue the reply times
 * never decrease (a new operation starts no earlier than the earliest free slot, and
 * that only moves forward), so each is a FIFO. */
static pthread_mutex_t reply_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reply_wake;
static struct pending *queue_head[2], *queue_tail[2];
static int replies_stopping;

static struct pending *begin(fuse_req_t req, enum op_kind kind)
{
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->req = req;
    p->kind = kind;
    p->cpu_start = now_ns(CLOCK_THREAD_CPUTIME_ID);
    p->type = R_NONE;
    if (!is_delayed(kind))
        return p;
    uint64_t delay = kind == OP_READDIR ? readdir_latency_ns : latency_ns;
    uint64_t arrival = now_ns(CLOCK_MONOTONIC);
    pthread_mutex_lock(&slot_lock);
    long first = 0;
    for (long i = 1; i < slot_count; i++)
        if (slot_free[i] < slot_free[first])
            first = i;
    p->start = slot_free[first] > arrival ? slot_free[first] : arrival;
    p->due = p->start + delay;
    slot_free[first] = p->due;
    uint64_t busy = 0;
    for (long i = 0; i < slot_count; i++)
        busy += slot_free[i] > arrival;
    pthread_mutex_unlock(&slot_lock);
    if (delay == 0)
        busy = 1;
    stat_add(&op_words(kind)[1], p->start - arrival);
    uint64_t peak = __atomic_load_n(&stats[H_PEAK_IN_SERVICE], __ATOMIC_RELAXED);
    while (busy > peak && !__atomic_compare_exchange_n(&stats[H_PEAK_IN_SERVICE], &peak, busy, 1,
                                                       __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    return p;
}

/* Send the reply now (counted first, so a client that has its answer sees it counted). */
static void reply_now(struct pending *p)
{
    uint64_t *words = op_words(p->kind);
    if (is_delayed(p->kind) && p->due > p->start) /* service start to reply: the latency, or more */
        stat_add(&words[2], now_ns(CLOCK_MONOTONIC) - p->start);
    stat_add(&words[0], 1);
    int failed = 0;
    switch (p->type) {
    case R_ERR:
        fuse_reply_err(p->req, p->error);
        break;
    case R_ENTRY:
        failed = fuse_reply_entry(p->req, &p->entry);
        break;
    case R_ATTR:
        fuse_reply_attr(p->req, &p->attr, attr_timeout);
        break;
    case R_READLINK:
        fuse_reply_readlink(p->req, p->buf);
        break;
    case R_OPEN:
        failed = fuse_reply_open(p->req, &p->fi);
        break;
    case R_BUF:
        fuse_reply_buf(p->req, p->buf, p->size);
        break;
    case R_NONE:
        fuse_reply_none(p->req);
        break;
    }
    if (failed && p->undo)
        p->undo(p);
    free(p->buf);
    free(p);
}

/* The handler is done: reply at once, or queue the reply for its time. */
static void send_reply(struct pending *p)
{
    if (!is_delayed(p->kind) || p->due <= now_ns(CLOCK_MONOTONIC)) {
        enum op_kind kind = p->kind;
        uint64_t cpu_start = p->cpu_start;
        reply_now(p);
        stat_add(&op_words(kind)[3], now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu_start);
        return;
    }
    stat_add(&op_words(p->kind)[3], now_ns(CLOCK_THREAD_CPUTIME_ID) - p->cpu_start);
    int q = p->kind == OP_READDIR;
    p->next = NULL;
    pthread_mutex_lock(&reply_lock);
    int was_empty = queue_head[0] == NULL && queue_head[1] == NULL;
    if (queue_tail[q])
        queue_tail[q]->next = p;
    else
        queue_head[q] = p;
    queue_tail[q] = p;
    /* The reply thread sleeps until its earliest reply; only a new earliest wakes it. */
    if (was_empty || (queue_head[q] == p && queue_head[!q] && p->due < queue_head[!q]->due))
        pthread_cond_signal(&reply_wake);
    pthread_mutex_unlock(&reply_lock);
}

static void reply_error(struct pending *p, int error)
{
    p->type = R_ERR;
    p->error = error;
    send_reply(p);
}

/* Sends every queued reply at its time; its CPU is charged to the operations it sends. */
static void *reply_thread(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&reply_lock);
    for (;;) {
        struct pending *h0 = queue_head[0], *h1 = queue_head[1];
        if (h0 == NULL && h1 == NULL) {
            if (replies_stopping)
                break;
            pthread_cond_wait(&reply_wake, &reply_lock);
            continue;
        }
        int q = h0 == NULL ? 1 : (h1 == NULL ? 0 : (h1->due < h0->due));
        struct pending *p = queue_head[q];
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        if (p->due > now && !replies_stopping) {
            struct timespec until = {(time_t)(p->due / 1000000000ULL), (long)(p->due % 1000000000ULL)};
            pthread_cond_timedwait(&reply_wake, &reply_lock, &until);
            continue;
        }
        queue_head[q] = p->next;
        if (queue_head[q] == NULL)
            queue_tail[q] = NULL;
        pthread_mutex_unlock(&reply_lock);
        enum op_kind kind = p->kind;
        uint64_t cpu = now_ns(CLOCK_THREAD_CPUTIME_ID);
        reply_now(p);
        stat_add(&op_words(kind)[3], now_ns(CLOCK_THREAD_CPUTIME_ID) - cpu);
        pthread_mutex_lock(&reply_lock);
    }
    pthread_mutex_unlock(&reply_lock);
    return NULL;
}

/* ---- nodes: one per source inode the kernel knows ------------------------------- */

struct node {
    dev_t dev;
    ino_t ino;
    char *path; /* absolute source path */
    uint64_t lookups;
    struct node *next;
};

#define BUCKETS (1u << 20)
static struct node **table;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct node root_node;

static size_t bucket_of(dev_t dev, ino_t ino)
{
    uint64_t h = ((uint64_t)ino * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)dev;
    return (size_t)(h >> 44) & (BUCKETS - 1);
}

static struct node *node_of(fuse_ino_t ino)
{
    return ino == FUSE_ROOT_ID ? &root_node : (struct node *)(uintptr_t)ino;
}

/* The node for a looked-up inode, its lookup count raised by one. */
static struct node *remember(const struct stat *st, const char *path)
{
    if (st->st_dev == root_node.dev && st->st_ino == root_node.ino)
        return &root_node;
    pthread_mutex_lock(&table_lock);
    size_t b = bucket_of(st->st_dev, st->st_ino);
    struct node *n = table[b];
    while (n && !(n->dev == st->st_dev && n->ino == st->st_ino))
        n = n->next;
    if (n == NULL) {
        n = calloc(1, sizeof *n);
        char *copy = strdup(path);
        if (n == NULL || copy == NULL) {
            free(n);
            free(copy);
            pthread_mutex_unlock(&table_lock);
            return NULL;
        }
        n->dev = st->st_dev;
        n->ino = st->st_ino;
        n->path = copy;
        n->next = table[b];
        table[b] = n;
        stat_add(&stats[H_NODES], 1);
    }
    n->lookups++;
    pthread_mutex_unlock(&table_lock);
    return n;
}

static void forget_node(fuse_ino_t ino, uint64_t count)
{
    if (ino == FUSE_ROOT_ID)
        return;
    struct node *n = node_of(ino);
    pthread_mutex_lock(&table_lock);
    n->lookups -= count < n->lookups ? count : n->lookups;
    if (n->lookups == 0) {
        struct node **link = &table[bucket_of(n->dev, n->ino)];
        while (*link != n)
            link = &(*link)->next;
        *link = n->next;
        free(n->path);
        free(n);
        __atomic_sub_fetch(&stats[H_NODES], 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&table_lock);
}

/* parent's path + "/" + name, or NULL with errno set (ENAMETOOLONG past PATH_MAX). */
static char *child_path(const struct node *parent, const char *name, char *buf)
{
    int len = snprintf(buf, PATH_MAX, "%s/%s", parent->path, name);
    if (len < 0 || len >= PATH_MAX) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    return buf;
}

/* ---- operations ------------------------------------------------------------------ */

/* Every handler: begin() (slot and reply time), the real work, then send_reply(). */
#define BEGIN(p, req, kind)                   \
    struct pending *p = begin(req, kind);     \
    if (p == NULL) {                          \
        fuse_reply_err(req, ENOMEM);          \
        return;                               \
    }

/* An open's reply: the kernel's file info with our handle; ``undo`` releases the handle
 * if the kernel does not take the reply. */
static void reply_open(struct pending *p, const struct fuse_file_info *fi, uint64_t handle,
                       void (*undo)(struct pending *))
{
    p->fi = *fi;
    p->fi.fh = handle;
    p->type = R_OPEN;
    p->undo = undo;
    send_reply(p);
}

static void forget_entry(struct pending *p)
{
    forget_node(p->entry.ino, 1);
}

static int whole_seconds; /* --whole-seconds */

/* lstat, with the times cut to whole seconds under --whole-seconds */
static int source_lstat(const char *path, struct stat *st)
{
    int rc = lstat(path, st);
    if (rc == 0 && whole_seconds)
        st->st_atim.tv_nsec = st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = 0;
    return rc;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    BEGIN(p, req, OP_LOOKUP);
    char buf[PATH_MAX];
    const char *path = child_path(node_of(parent), name, buf);
    if (path == NULL || source_lstat(path, &p->entry.attr) != 0) {
        reply_error(p, errno);
        return;
    }
    struct node *n = remember(&p->entry.attr, path);
    if (n == NULL) {
        reply_error(p, ENOMEM);
        return;
    }
    p->entry.ino = n == &root_node ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
    p->entry.attr_timeout = attr_timeout;
    p->entry.entry_timeout = entry_timeout;
    p->type = R_ENTRY;
    p->undo = forget_entry; /* the kernel never got it (interrupted) */
    send_reply(p);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    BEGIN(p, req, OP_FORGET);
    forget_node(ino, nlookup);
    send_reply(p);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    BEGIN(p, req, OP_FORGET);
    for (size_t i = 0; i < count; i++)
        forget_node(forgets[i].ino, forgets[i].nlookup);
    send_reply(p);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    BEGIN(p, req, OP_GETATTR);
    if (source_lstat(node_of(ino)->path, &p->attr) != 0) {
        reply_error(p, errno);
        return;
    }
    p->type = R_ATTR;
    send_reply(p);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    BEGIN(p, req, OP_READLINK);
    p->buf = malloc(PATH_MAX + 1);
    ssize_t len = p->buf ? readlink(node_of(ino)->path, p->buf, PATH_MAX) : -1;
    if (len < 0) {
        reply_error(p, p->buf ? errno : ENOMEM);
        return;
    }
    p->buf[len] = '\0';
    p->type = R_READLINK;
    send_reply(p);
}

/* A directory handle: the open directory, and its whole listing once the first readdir
 * asks (one snapshot per open, as readdir offsets must stay valid).  Opening reads
 * nothing: a walker that opens a directory only to stat names relative to it pays the
 * open's round trip and no listing. */
struct listing {
    DIR *dir;
    int read;
    size_t count;
    char **names;
    ino_t *inos;
    unsigned char *types;
};

static void free_listing(struct listing *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    free(l->inos);
    free(l->types);
    if (l->dir)
        closedir(l->dir);
    free(l);
}

static int grow_listing(struct listing *l, size_t capacity)
{
    char **names = realloc(l->names, capacity * sizeof *names);
    if (names == NULL)
        return -1;
    l->names = names;
    ino_t *inos = realloc(l->inos, capacity * sizeof *inos);
    if (inos == NULL)
        return -1;
    l->inos = inos;
    unsigned char *types = realloc(l->types, capacity);
    if (types == NULL)
        return -1;
    l->types = types;
    return 0;
}

/* Read the whole directory into the handle; 0, or an errno value. */
static int read_listing(struct listing *l)
{
    size_t capacity = 0;
    for (;;) {
        errno = 0;
        struct dirent *d = readdir(l->dir);
        if (d == NULL)
            break;
        if (l->count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            if (grow_listing(l, capacity) != 0)
                return ENOMEM;
        }
        l->names[l->count] = strdup(d->d_name);
        if (l->names[l->count] == NULL)
            return ENOMEM;
        l->inos[l->count] = d->d_ino;
        l->types[l->count] = d->d_type;
        l->count++;
    }
    if (errno)
        return errno;
    l->read = 1;
    return 0;
}

static void free_listing_of(struct pending *p)
{
    free_listing((struct listing *)(uintptr_t)p->fi.fh);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    BEGIN(p, req, OP_OPENDIR);
    struct listing *l = calloc(1, sizeof *l);
    if (l == NULL) {
        reply_error(p, ENOMEM);
        return;
    }
    l->dir = opendir(node_of(ino)->path);
    if (l->dir == NULL) {
        int error = errno;
        free(l);
        reply_error(p, error);
        return;
    }
    reply_open(p, fi, (uint64_t)(uintptr_t)l, free_listing_of);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    BEGIN(p, req, OP_READDIR);
    struct listing *l = (struct listing *)(uintptr_t)fi->fh;
    int error = l->read ? 0 : read_listing(l); /* the kernel runs one readdir per handle at a time */
    p->buf = error ? NULL : malloc(size ? size : 1);
    if (p->buf == NULL) {
        reply_error(p, error ? error : ENOMEM);
        return;
    }
    size_t used = 0;
    for (size_t i = (size_t)off; i < l->count; i++) {
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = l->inos[i];
        st.st_mode = (mode_t)DTTOIF(l->types[i]);
        size_t need = fuse_add_direntry(req, p->buf + used, size - used, l->names[i], &st, (off_t)(i + 1));
        if (need > size - used)
            break;
        used += need;
    }
    p->size = used;
    p->type = R_BUF;
    send_reply(p);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    BEGIN(p, req, OP_RELEASEDIR);
    free_listing((struct listing *)(uintptr_t)fi->fh);
    p->type = R_ERR; /* error 0: success */
    send_reply(p);
}

static void close_file_of(struct pending *p)
{
    close((int)p->fi.fh);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    BEGIN(p, req, OP_OPEN);
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        reply_error(p, EROFS);
        return;
    }
    int fd = open(node_of(ino)->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (fi->flags & O_NONBLOCK));
    if (fd < 0) {
        reply_error(p, errno);
        return;
    }
    reply_open(p, fi, (uint64_t)fd, close_file_of);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    BEGIN(p, req, OP_READ);
    p->buf = malloc(size ? size : 1);
    ssize_t got = p->buf ? pread((int)fi->fh, p->buf, size, off) : -1;
    if (got < 0) {
        reply_error(p, p->buf ? errno : ENOMEM);
        return;
    }
    p->size = (size_t)got;
    p->type = R_BUF;
    send_reply(p);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    BEGIN(p, req, OP_RELEASE);
    close((int)fi->fh);
    p->type = R_ERR;
    send_reply(p);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    BEGIN(p, req, OP_STATFS);
    struct statvfs sv;
    if (statvfs(root_node.path, &sv) != 0) {
        reply_error(p, errno);
        return;
    }
    p->type = R_BUF;
    /* statfs has its own reply: send it here, it is never delayed */
    stat_add(&op_words(OP_STATFS)[0], 1);
    fuse_reply_statfs(req, &sv);
    stat_add(&op_words(OP_STATFS)[3], now_ns(CLOCK_THREAD_CPUTIME_ID) - p->cpu_start);
    free(p);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    /* Plain readdir only: readdirplus would hand the kernel every entry's attributes
     * with the listing, which a Lustre readdir does not. */
    conn->want &= ~(unsigned)(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
    /* Lookups and readdirs in one directory run in parallel, as on a metadata server. */
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
}

static const struct fuse_lowlevel_ops operations = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .statfs = op_statfs,
};

/* ---- command line ---------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: latfs [--latency-ms X] [--readdir-latency-ms Y] [--threads N] [--stats FILE]\n"
            "             [--attr-timeout S] [--entry-timeout S] [--allow-other] [--no-realtime]\n"
            "             [--whole-seconds] SOURCE MOUNTPOINT\n");
}

static int parse_ms(const char *text, uint64_t *ns)
{
    char *rest;
    double ms = strtod(text, &rest);
    if (*text == '\0' || *rest != '\0' || !(ms >= 0) || ms > 1e6)
        return -1;
    *ns = (uint64_t)(ms * 1e6 + 0.5);
    return 0;
}

static int parse_seconds(const char *text, double *out)
{
    char *rest;
    *out = strtod(text, &rest);
    return (*text == '\0' || *rest != '\0' || !(*out >= 0)) ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *stats_path = NULL, *source = NULL, *mountpoint = NULL;
    long threads = 16;
    int readdir_given = 0, allow_other = 0, realtime = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--latency-ms") == 0 && v) {
            if (parse_ms(v, &latency_ns) != 0)
                goto bad;
            i++;
        } else if (strcmp(a, "--readdir-latency-ms") == 0 && v) {
            if (parse_ms(v, &readdir_latency_ns) != 0)
                goto bad;
            readdir_given = 1;
            i++;
        } else if (strcmp(a, "--threads") == 0 && v) {
            char *rest;
            threads = strtol(v, &rest, 10);
            if (*rest != '\0' || threads < 1 || threads > 10000)
                goto bad;
            i++;
        } else if (strcmp(a, "--stats") == 0 && v) {
            stats_path = v;
            i++;
        } else if (strcmp(a, "--attr-timeout") == 0 && v) {
            if (parse_seconds(v, &attr_timeout) != 0)
                goto bad;
            i++;
        } else if (strcmp(a, "--entry-timeout") == 0 && v) {
            if (parse_seconds(v, &entry_timeout) != 0)
                goto bad;
            i++;
        } else if (strcmp(a, "--allow-other") == 0) {
            allow_other = 1;
        } else if (strcmp(a, "--no-realtime") == 0) {
            realtime = 0;
        } else if (strcmp(a, "--whole-seconds") == 0) {
            whole_seconds = 1;
        } else if (a[0] == '-') {
            goto bad;
        } else if (source == NULL) {
            source = a;
        } else if (mountpoint == NULL) {
            mountpoint = a;
        } else {
            goto bad;
        }
    }
    if (source == NULL || mountpoint == NULL)
        goto bad;
    if (!readdir_given)
        readdir_latency_ns = latency_ns;

    root_node.path = realpath(source, NULL);
    struct stat st;
    if (root_node.path == NULL || stat(root_node.path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "latfs: %s: not a readable directory\n", source);
        return 2;
    }
    root_node.dev = st.st_dev;
    root_node.ino = st.st_ino;
    table = calloc(BUCKETS, sizeof *table);
    slot_count = threads;
    slot_free = calloc((size_t)threads, sizeof *slot_free);
    if (table == NULL || slot_free == NULL || open_stats(stats_path) != 0)
        return 1;
    stats[H_MAGIC] = STATS_MAGIC;
    stats[H_VERSION] = STATS_VERSION;
    stats[H_KINDS] = OP_KINDS;
    stats[H_LATENCY_NS] = latency_ns;
    stats[H_READDIR_LATENCY_NS] = readdir_latency_ns;
    stats[H_THREADS] = (uint64_t)threads;
    stats[H_PID] = (uint64_t)getpid();
    /* A metadata server has its own CPUs; latfs shares the clients'.  So that hundreds of
     * busy clients cannot delay its replies (what a benchmark would then measure is the
     * scheduler), its threads run at real-time priority where allowed (root), else at
     * nice -10, else as they are.  It uses little CPU (tens of us per operation), and the
     * kernel keeps 5% of every second for other tasks whatever real-time tasks do. */
    if (realtime) {
        struct sched_param param = {.sched_priority = 10};
        if (sched_setscheduler(0, SCHED_FIFO, &param) == 0)
            stats[H_PRIORITY] = 2;
        else if (setpriority(PRIO_PROCESS, 0, -10) == 0)
            stats[H_PRIORITY] = 1;
    }
    /* Timer slack: without this the reply thread's 0.2 ms waits overshoot by up to
     * 50 us.  Threads inherit it from the thread that starts them. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    pthread_condattr_t clock_attr;
    pthread_condattr_init(&clock_attr);
    pthread_condattr_setclock(&clock_attr, CLOCK_MONOTONIC);
    pthread_cond_init(&reply_wake, &clock_attr);
    pthread_t replier;
    if (pthread_create(&replier, NULL, reply_thread, NULL) != 0)
        return 1;

    char opts[PATH_MAX + 128];
    snprintf(opts, sizeof opts, "ro,fsname=latfs%s", allow_other ? ",allow_other" : "");
    char *fuse_argv[] = {argv[0], "-o", opts, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, fuse_argv);
    struct fuse_session *se = fuse_session_new(&args, &operations, sizeof operations, NULL);
    if (se == NULL)
        return 1;
    int code = 1;
    if (fuse_set_signal_handlers(se) == 0) {
        if (fuse_session_mount(se, mountpoint) == 0) {
            __atomic_store_n(&stats[H_READY], 1, __ATOMIC_RELEASE);
            printf("ready\n");
            fflush(stdout);
            struct fuse_loop_config *config = fuse_loop_cfg_create();
            /* Handlers never wait (replies are queued), so a few threads take every
             * request as it comes; more only help when the source blocks on its disk. */
            fuse_loop_cfg_set_max_threads(config, HANDLER_THREADS);
            fuse_loop_cfg_set_idle_threads(config, HANDLER_THREADS);
            code = fuse_session_loop_mt(se, config) == 0 ? 0 : 1;
            fuse_loop_cfg_destroy(config);
            fuse_session_unmount(se);
        }
        fuse_remove_signal_handlers(se);
    }
    pthread_mutex_lock(&reply_lock);
    replies_stopping = 1; /* send what is queued (to an unmounted kernel: dropped) and end */
    pthread_cond_signal(&reply_wake);
    pthread_mutex_unlock(&reply_lock);
    pthread_join(replier, NULL);
    fuse_session_destroy(se);
    __atomic_store_n(&stats[H_READY], 0, __ATOMIC_RELEASE);
    return code;

bad:
    usage();
    return 2;
}
