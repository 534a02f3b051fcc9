/*
 * latfs: a read-only FUSE mirror of a directory tree that behaves like a parallel
 * filesystem's metadata server, for benchmarks and tests.
 *
 *   latfs [--latency-ms X] [--readdir-latency-ms Y] [--threads N] [--stats FILE]
 *         [--attr-timeout S] [--entry-timeout S] SOURCE MOUNTPOINT
 *
 * Every metadata operation (lookup, getattr, opendir, each readdir page, open,
 * readlink) first takes one of N service slots, then waits X ms (sleeping, not
 * computing), then does the real work on SOURCE and replies.  So the filesystem
 * serves at most N / X operations per second, like a metadata server with N service
 * threads and a network round trip in front of it.  The kernel caches no entries and
 * attributes for at most one clock tick (see attr_timeout below): every stat reaches
 * latfs as one LOOKUP, as in a first walk of a Lustre tree.  No default_permissions:
 * the kernel would refresh the parent directory's attributes before every lookup.
 *
 * Counters live in FILE (--stats), a small shared-memory table of 64-bit integers
 * updated atomically as operations finish: per operation kind the count, the time
 * spent waiting for a slot, the time spent in the latency wait and the thread CPU
 * time of the handler.  A benchmark reads it before and after a run and subtracts,
 * which proves how much of what it measured the filesystem itself cost.  The layout
 * is documented in benchmarks/latfs/__init__.py, which reads it.
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
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
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
    H_IN_SERVICE, H_PEAK_IN_SERVICE, H_READY, H_NODES
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

/* ---- service slots and the latency wait ----------------------------------------- */

static sem_t slots;
static struct timespec latency, readdir_latency;
/* Entry timeout 0: every lookup of a name reaches latfs.  Attribute timeout 1 ns, which
 * the kernel rounds up to one clock tick: the attributes a LOOKUP returns serve the stat
 * that asked for them and nothing later.  With 0 the kernel follows every LOOKUP with a
 * GETATTR, two round trips per stat, which a Lustre client does not pay (its lookup
 * intent returns the attributes with the lock). */
static double attr_timeout = 1e-9, entry_timeout = 0.0;

static uint64_t ns_of(const struct timespec *t)
{
    return (uint64_t)t->tv_sec * 1000000000ULL + (uint64_t)t->tv_nsec;
}

static uint64_t now_ns(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return ns_of(&t);
}

/* What one operation did, for its counters. */
struct service {
    enum op_kind kind;
    uint64_t cpu_start;
    int holds_slot;
};

/* Take a slot, then wait the latency (to an absolute deadline, so the wait is never
 * shorter than asked; it can be longer when the machine is busy, and the counters
 * record what it really was). */
static void begin(struct service *s, enum op_kind kind)
{
    s->kind = kind;
    s->cpu_start = now_ns(CLOCK_THREAD_CPUTIME_ID);
    s->holds_slot = 0;
    const struct timespec *delay = kind == OP_READDIR ? &readdir_latency : &latency;
    uint64_t *words = op_words(kind);
    if (kind == OP_LOOKUP || kind == OP_GETATTR || kind == OP_OPENDIR || kind == OP_READDIR ||
        kind == OP_OPEN || kind == OP_READLINK) {
        uint64_t queued = now_ns(CLOCK_MONOTONIC);
        while (sem_wait(&slots) != 0 && errno == EINTR)
            ;
        s->holds_slot = 1;
        uint64_t start = now_ns(CLOCK_MONOTONIC);
        stat_add(&words[1], start - queued);
        uint64_t busy = __atomic_add_fetch(&stats[H_IN_SERVICE], 1, __ATOMIC_RELAXED);
        uint64_t peak = __atomic_load_n(&stats[H_PEAK_IN_SERVICE], __ATOMIC_RELAXED);
        while (busy > peak &&
               !__atomic_compare_exchange_n(&stats[H_PEAK_IN_SERVICE], &peak, busy, 1,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            ;
        if (ns_of(delay) > 0) {
            uint64_t deadline = start + ns_of(delay);
            struct timespec until = {(time_t)(deadline / 1000000000ULL), (long)(deadline % 1000000000ULL)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
                ;
            stat_add(&words[2], now_ns(CLOCK_MONOTONIC) - start);
        }
    }
}

/* Before the reply: free the slot and count the operation, so that a client which has
 * its answer also sees it counted. */
static void finish(struct service *s)
{
    if (s->holds_slot) {
        __atomic_sub_fetch(&stats[H_IN_SERVICE], 1, __ATOMIC_RELAXED);
        sem_post(&slots);
        s->holds_slot = 0;
    }
    stat_add(&op_words(s->kind)[0], 1);
}

/* After the reply: the handler's CPU, the reply's system call included. */
static void charge(struct service *s)
{
    stat_add(&op_words(s->kind)[3], now_ns(CLOCK_THREAD_CPUTIME_ID) - s->cpu_start);
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

static void reply_error_end(fuse_req_t req, struct service *s, int error)
{
    finish(s);
    fuse_reply_err(req, error);
    charge(s);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct service s;
    begin(&s, OP_LOOKUP);
    char buf[PATH_MAX];
    const char *path = child_path(node_of(parent), name, buf);
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    if (path == NULL || lstat(path, &e.attr) != 0) {
        reply_error_end(req, &s, errno);
        return;
    }
    struct node *n = remember(&e.attr, path);
    if (n == NULL) {
        reply_error_end(req, &s, ENOMEM);
        return;
    }
    e.ino = n == &root_node ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
    e.attr_timeout = attr_timeout;
    e.entry_timeout = entry_timeout;
    finish(&s);
    if (fuse_reply_entry(req, &e) != 0)
        forget_node(e.ino, 1); /* the kernel never got it (interrupted) */
    charge(&s);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct service s;
    begin(&s, OP_FORGET);
    forget_node(ino, nlookup);
    finish(&s);
    fuse_reply_none(req);
    charge(&s);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    struct service s;
    begin(&s, OP_FORGET);
    for (size_t i = 0; i < count; i++)
        forget_node(forgets[i].ino, forgets[i].nlookup);
    finish(&s);
    fuse_reply_none(req);
    charge(&s);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct service s;
    begin(&s, OP_GETATTR);
    struct stat st;
    if (lstat(node_of(ino)->path, &st) != 0) {
        reply_error_end(req, &s, errno);
        return;
    }
    finish(&s);
    fuse_reply_attr(req, &st, attr_timeout);
    charge(&s);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct service s;
    begin(&s, OP_READLINK);
    char target[PATH_MAX + 1];
    ssize_t len = readlink(node_of(ino)->path, target, PATH_MAX);
    if (len < 0) {
        reply_error_end(req, &s, errno);
        return;
    }
    target[len] = '\0';
    finish(&s);
    fuse_reply_readlink(req, target);
    charge(&s);
}

/* A directory handle: the whole listing, read at opendir (one snapshot per open, as
 * readdir offsets must stay valid); readdir hands it out a page at a time. */
struct listing {
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
    free(l);
}

static struct listing *read_listing(const char *path)
{
    DIR *dir = opendir(path);
    if (dir == NULL)
        return NULL;
    struct listing *l = calloc(1, sizeof *l);
    size_t capacity = 0;
    struct dirent *d;
    errno = 0;
    while (l && (d = readdir(dir)) != NULL) {
        if (l->count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            char **names = realloc(l->names, capacity * sizeof *names);
            ino_t *inos = names ? realloc(l->inos, capacity * sizeof *inos) : NULL;
            unsigned char *types = inos ? realloc(l->types, capacity) : NULL;
            if (names)
                l->names = names;
            if (inos)
                l->inos = inos;
            if (types == NULL) {
                free_listing(l);
                l = NULL;
                errno = ENOMEM;
                break;
            }
            l->types = types;
        }
        l->names[l->count] = strdup(d->d_name);
        if (l->names[l->count] == NULL) {
            free_listing(l);
            l = NULL;
            errno = ENOMEM;
            break;
        }
        l->inos[l->count] = d->d_ino;
        l->types[l->count] = d->d_type;
        l->count++;
        errno = 0;
    }
    int saved = errno;
    closedir(dir);
    if (l && saved) {
        free_listing(l);
        l = NULL;
    }
    errno = l ? 0 : (saved ? saved : ENOMEM);
    return l;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct service s;
    begin(&s, OP_OPENDIR);
    struct listing *l = read_listing(node_of(ino)->path);
    if (l == NULL) {
        reply_error_end(req, &s, errno);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)l;
    finish(&s);
    if (fuse_reply_open(req, fi) != 0)
        free_listing(l);
    charge(&s);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    struct service s;
    begin(&s, OP_READDIR);
    struct listing *l = (struct listing *)(uintptr_t)fi->fh;
    char *buf = malloc(size);
    if (buf == NULL) {
        reply_error_end(req, &s, ENOMEM);
        return;
    }
    size_t used = 0;
    for (size_t i = (size_t)off; i < l->count; i++) {
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = l->inos[i];
        st.st_mode = (mode_t)DTTOIF(l->types[i]);
        size_t need = fuse_add_direntry(req, buf + used, size - used, l->names[i], &st, (off_t)(i + 1));
        if (need > size - used)
            break;
        used += need;
    }
    finish(&s);
    fuse_reply_buf(req, buf, used);
    free(buf);
    charge(&s);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct service s;
    begin(&s, OP_RELEASEDIR);
    free_listing((struct listing *)(uintptr_t)fi->fh);
    finish(&s);
    fuse_reply_err(req, 0);
    charge(&s);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct service s;
    begin(&s, OP_OPEN);
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        reply_error_end(req, &s, EROFS);
        return;
    }
    int fd = open(node_of(ino)->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (fi->flags & O_NONBLOCK));
    if (fd < 0) {
        reply_error_end(req, &s, errno);
        return;
    }
    fi->fh = (uint64_t)fd;
    finish(&s);
    if (fuse_reply_open(req, fi) != 0)
        close(fd);
    charge(&s);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    struct service s;
    begin(&s, OP_READ);
    char *buf = malloc(size ? size : 1);
    if (buf == NULL) {
        reply_error_end(req, &s, ENOMEM);
        return;
    }
    ssize_t got = pread((int)fi->fh, buf, size, off);
    int error = errno;
    finish(&s);
    if (got < 0)
        fuse_reply_err(req, error);
    else
        fuse_reply_buf(req, buf, (size_t)got);
    free(buf);
    charge(&s);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct service s;
    begin(&s, OP_RELEASE);
    close((int)fi->fh);
    finish(&s);
    fuse_reply_err(req, 0);
    charge(&s);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct service s;
    begin(&s, OP_STATFS);
    struct statvfs sv;
    if (statvfs(root_node.path, &sv) != 0) {
        reply_error_end(req, &s, errno);
        return;
    }
    finish(&s);
    fuse_reply_statfs(req, &sv);
    charge(&s);
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
            "             [--attr-timeout S] [--entry-timeout S] [--allow-other] SOURCE MOUNTPOINT\n");
}

static int parse_ms(const char *text, struct timespec *out)
{
    char *rest;
    double ms = strtod(text, &rest);
    if (*text == '\0' || *rest != '\0' || !(ms >= 0) || ms > 1e6)
        return -1;
    uint64_t ns = (uint64_t)(ms * 1e6 + 0.5);
    out->tv_sec = (time_t)(ns / 1000000000ULL);
    out->tv_nsec = (long)(ns % 1000000000ULL);
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
    int readdir_given = 0, allow_other = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--latency-ms") == 0 && v) {
            if (parse_ms(v, &latency) != 0)
                goto bad;
            i++;
        } else if (strcmp(a, "--readdir-latency-ms") == 0 && v) {
            if (parse_ms(v, &readdir_latency) != 0)
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
        readdir_latency = latency;

    root_node.path = realpath(source, NULL);
    struct stat st;
    if (root_node.path == NULL || stat(root_node.path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "latfs: %s: not a readable directory\n", source);
        return 2;
    }
    root_node.dev = st.st_dev;
    root_node.ino = st.st_ino;
    table = calloc(BUCKETS, sizeof *table);
    if (table == NULL || open_stats(stats_path) != 0 || sem_init(&slots, 0, (unsigned)threads) != 0)
        return 1;
    stats[H_MAGIC] = STATS_MAGIC;
    stats[H_VERSION] = STATS_VERSION;
    stats[H_KINDS] = OP_KINDS;
    stats[H_LATENCY_NS] = ns_of(&latency);
    stats[H_READDIR_LATENCY_NS] = ns_of(&readdir_latency);
    stats[H_THREADS] = (uint64_t)threads;
    stats[H_PID] = (uint64_t)getpid();
    /* Timer slack: without this a 0.2 ms sleep overshoots by up to 50 us.  Worker
     * threads inherit it from the thread that starts them. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

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
            /* Enough kernel-facing threads that requests queue for latfs's own slots
             * (where the wait is counted), plus a few for forgets and releases. */
            fuse_loop_cfg_set_max_threads(config, (unsigned)threads + 8);
            fuse_loop_cfg_set_idle_threads(config, (unsigned)threads + 8);
            code = fuse_session_loop_mt(se, config) == 0 ? 0 : 1;
            fuse_loop_cfg_destroy(config);
            fuse_session_unmount(se);
        }
        fuse_remove_signal_handlers(se);
    }
    fuse_session_destroy(se);
    __atomic_store_n(&stats[H_READY], 0, __ATOMIC_RELEASE);
    return code;

bad:
    usage();
    return 2;
}
