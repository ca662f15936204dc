// What tracing without ptrace stops would cost here: the measurement behind the eBPF
// tracer proposal in BENCHMARKS.md (#10, "tracing overhead < 2x").
//
// Two hand-assembled BPF programs on raw_syscalls:sys_enter / sys_exit (no clang needed)
// record every system call of the traced threads into a ring buffer, with the path of
// each openat copied in the kernel; a third on sched:sched_process_fork adds children
// to the traced set. A consumer thread drains the ring buffer, as a tracer would. The
// open-heavy loop of bench/sandbox runs bare, then traced, alternately, in one run.
//
//   gcc -O2 -pthread -o /tmp/ebpf_probe bench/sandbox/ebpf_probe.c && /tmp/ebpf_probe
//
// Needs root, tracefs (mounted on /sys/kernel/tracing if it is not) and a kernel with
// BPF ring buffers (5.8+).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV32_REG(d, s) INSN(BPF_ALU | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define LDX(sz, d, s, o) INSN(BPF_LDX | (sz) | BPF_MEM, d, s, o, 0)
#define STX(sz, d, s, o) INSN(BPF_STX | (sz) | BPF_MEM, d, s, o, 0)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define JNE_IMM(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define LD_MAP_FD(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)

// Both syscall programs start alike: keep the context in r6, the thread id in r8 (and at
// fp-4), and look the thread up in the traced set (r0: NULL if it is not traced). The
// next instruction jumps out on NULL.
#define TRACED_THREAD_ONLY(map)                                                       \
    MOV64_REG(6, 1), CALL(BPF_FUNC_get_current_pid_tgid), MOV32_REG(0, 0), MOV64_REG(8, 0), \
        STX(BPF_W, 10, 0, -4), LD_MAP_FD(1, map), MOV64_REG(2, 10), ADD64_IMM(2, -4),     \
        CALL(BPF_FUNC_map_lookup_elem)

static long sys_bpf(int cmd, union bpf_attr *a) { return syscall(__NR_bpf, cmd, a, sizeof(*a)); }

static int map_create(int type, int key, int value, int max) {
    union bpf_attr a = {0};
    a.map_type = type;
    a.key_size = key;
    a.value_size = value;
    a.max_entries = max;
    int fd = sys_bpf(BPF_MAP_CREATE, &a);
    if (fd < 0) { perror("BPF_MAP_CREATE"); exit(1); }
    return fd;
}

static char vlog[1 << 16];

static int prog_load(struct bpf_insn *insns, int n) {
    union bpf_attr a = {0};
    a.prog_type = BPF_PROG_TYPE_TRACEPOINT;
    a.insns = (uint64_t)(uintptr_t)insns;
    a.insn_cnt = n;
    a.license = (uint64_t)(uintptr_t)"GPL";
    a.log_buf = (uint64_t)(uintptr_t)vlog;
    a.log_size = sizeof(vlog);
    a.log_level = 1;
    int fd = sys_bpf(BPF_PROG_LOAD, &a);
    if (fd < 0) { fprintf(stderr, "BPF_PROG_LOAD: %s\n%s\n", strerror(errno), vlog); exit(1); }
    return fd;
}

static void attach(const char *event, int prog) {
    char path[256], buf[32] = {0};
    snprintf(path, sizeof path, "/sys/kernel/tracing/events/%s/id", event);
    int f = open(path, O_RDONLY);
    if (f < 0 || read(f, buf, sizeof buf - 1) <= 0) { perror(path); exit(1); }
    close(f);
    struct perf_event_attr pa = {0};
    pa.type = PERF_TYPE_TRACEPOINT;
    pa.size = sizeof pa;
    pa.config = strtoull(buf, 0, 10);
    pa.sample_period = 1;
    pa.wakeup_events = 1;
    int pfd = syscall(__NR_perf_event_open, &pa, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
    if (pfd < 0) { perror("perf_event_open"); exit(1); }
    if (ioctl(pfd, PERF_EVENT_IOC_SET_BPF, prog) < 0) { perror("SET_BPF"); exit(1); }
    if (ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0) < 0) { perror("ENABLE"); exit(1); }
}

#define RING (8 << 20)
static atomic_long records, bytes;
static atomic_int stop;
static void *cons_page, *prod_pages;

// Drains the ring buffer: each record is an 8-byte header (length, busy and discard
// bits) and its data, 8-byte aligned.
static void *consume(void *arg) {
    (void)arg;
    long page = sysconf(_SC_PAGESIZE);
    volatile uint64_t *cons = cons_page;
    volatile uint64_t *prod = prod_pages;
    char *data = (char *)prod_pages + page;
    while (!atomic_load(&stop)) {
        uint64_t c = *cons, p = __atomic_load_n(prod, __ATOMIC_ACQUIRE);
        if (c == p) { usleep(200); continue; }
        while (c < p) {
            uint32_t len = __atomic_load_n((uint32_t *)(data + (c & (RING - 1))), __ATOMIC_ACQUIRE);
            if (len & (1u << 31)) break; // busy: not committed yet
            uint32_t n = len & ~(3u << 30);
            atomic_fetch_add(&records, 1);
            atomic_fetch_add(&bytes, n);
            c += (8 + n + 7) & ~7ull;
        }
        __atomic_store_n(cons, c, __ATOMIC_RELEASE);
    }
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

// The open-heavy loop of bench/sandbox (100 000 x open/close + stat), in a child that
// waits on `go` so that it can be put in the traced set before it starts.
static double heavy(int traced_map) {
    int go[2];
    if (pipe(go)) exit(1);
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        char b;
        close(go[1]);
        if (read(go[0], &b, 1) != 1) _exit(1);
        struct stat st;
        for (int i = 0; i < 100000; i++) {
            int fd = open("/etc/hostname", O_RDONLY);
            if (fd >= 0) close(fd);
            stat("/etc/hostname", &st);
        }
        _exit(0);
    }
    close(go[0]);
    if (traced_map >= 0) {
        uint32_t k = pid, v = 1;
        union bpf_attr a = {0};
        a.map_fd = traced_map;
        a.key = (uint64_t)(uintptr_t)&k;
        a.value = (uint64_t)(uintptr_t)&v;
        if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a)) { perror("BPF_MAP_UPDATE_ELEM"); exit(1); }
    }
    t0 = now();
    if (write(go[1], "x", 1) != 1) exit(1);
    int status;
    waitpid(pid, &status, 0);
    double t = now() - t0;
    close(go[1]);
    if (traced_map >= 0) {
        uint32_t k = pid;
        union bpf_attr a = {0};
        a.map_fd = traced_map;
        a.key = (uint64_t)(uintptr_t)&k;
        sys_bpf(BPF_MAP_DELETE_ELEM, &a);
    }
    return t;
}

static int cmp(const void *a, const void *b) {
    double x = *(double *)a, y = *(double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    mkdir("/sys/kernel/tracing", 0755);
    if (access("/sys/kernel/tracing/events", F_OK) &&
        system("mount -t tracefs nodev /sys/kernel/tracing")) {
        fprintf(stderr, "no tracefs\n");
        return 1;
    }
    int traced = map_create(BPF_MAP_TYPE_HASH, 4, 4, 65536);
    int ring = map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, RING);

    // sys_enter: if the thread is traced, a 288-byte record: nr, args 0-2, tid, time, and
    // for openat (257) the path, copied from the tracee's memory by the kernel.
    struct bpf_insn enter[] = {
        TRACED_THREAD_ONLY(traced),
        JEQ_IMM(0, 0, 26),
        LD_MAP_FD(1, ring),
        MOV64_IMM(2, 288), MOV64_IMM(3, 0),
        CALL(BPF_FUNC_ringbuf_reserve),
        JEQ_IMM(0, 0, 20),
        MOV64_REG(7, 0),
        LDX(BPF_DW, 1, 6, 8), STX(BPF_DW, 7, 1, 0),
        LDX(BPF_DW, 1, 6, 16), STX(BPF_DW, 7, 1, 8),
        LDX(BPF_DW, 1, 6, 24), STX(BPF_DW, 7, 1, 16),
        STX(BPF_DW, 7, 8, 24),
        CALL(BPF_FUNC_ktime_get_ns), STX(BPF_DW, 7, 0, 32),
        LDX(BPF_DW, 1, 6, 8), JNE_IMM(1, 257, 5),
        MOV64_REG(1, 7), ADD64_IMM(1, 40), MOV64_IMM(2, 248), LDX(BPF_DW, 3, 6, 24),
        CALL(BPF_FUNC_probe_read_user_str),
        MOV64_REG(1, 7), MOV64_IMM(2, 0), CALL(BPF_FUNC_ringbuf_submit),
        MOV64_IMM(0, 0), EXIT(),
    };
    // sys_exit: nr, return value, tid, time.
    struct bpf_insn exit_[] = {
        TRACED_THREAD_ONLY(traced),
        JEQ_IMM(0, 0, 17),
        LD_MAP_FD(1, ring),
        MOV64_IMM(2, 32), MOV64_IMM(3, 0),
        CALL(BPF_FUNC_ringbuf_reserve),
        JEQ_IMM(0, 0, 11),
        MOV64_REG(7, 0),
        LDX(BPF_DW, 1, 6, 8), STX(BPF_DW, 7, 1, 0),
        LDX(BPF_DW, 1, 6, 16), STX(BPF_DW, 7, 1, 8),
        STX(BPF_DW, 7, 8, 16),
        CALL(BPF_FUNC_ktime_get_ns), STX(BPF_DW, 7, 0, 24),
        MOV64_REG(1, 7), MOV64_IMM(2, 0), CALL(BPF_FUNC_ringbuf_submit),
        MOV64_IMM(0, 0), EXIT(),
    };
    // sched_process_fork: a traced parent's child is traced (parent_pid at 12,
    // child_pid at 20).
    struct bpf_insn fork_[] = {
        LDX(BPF_W, 2, 1, 12), STX(BPF_W, 10, 2, -4),
        LDX(BPF_W, 2, 1, 20), STX(BPF_W, 10, 2, -8),
        LD_MAP_FD(1, traced),
        MOV64_REG(2, 10), ADD64_IMM(2, -4),
        CALL(BPF_FUNC_map_lookup_elem),
        JEQ_IMM(0, 0, 7),
        LD_MAP_FD(1, traced),
        MOV64_REG(2, 10), ADD64_IMM(2, -8),
        MOV64_REG(3, 0), MOV64_IMM(4, 0),
        CALL(BPF_FUNC_map_update_elem),
        MOV64_IMM(0, 0), EXIT(),
    };
    attach("raw_syscalls/sys_enter", prog_load(enter, sizeof enter / sizeof *enter));
    attach("raw_syscalls/sys_exit", prog_load(exit_, sizeof exit_ / sizeof *exit_));
    attach("sched/sched_process_fork", prog_load(fork_, sizeof fork_ / sizeof *fork_));

    long page = sysconf(_SC_PAGESIZE);
    cons_page = mmap(0, page, PROT_READ | PROT_WRITE, MAP_SHARED, ring, 0);
    prod_pages = mmap(0, page + 2 * (size_t)RING, PROT_READ, MAP_SHARED, ring, page);
    if (cons_page == MAP_FAILED || prod_pages == MAP_FAILED) { perror("mmap ring"); return 1; }
    pthread_t th;
    pthread_create(&th, 0, consume, 0);

    enum { N = 7 };
    double bare[N], traced_t[N];
    for (int i = 0; i < N; i++) {
        bare[i] = heavy(-1);
        traced_t[i] = heavy(traced);
    }
    usleep(100000);
    atomic_store(&stop, 1);
    pthread_join(th, 0);
    qsort(bare, N, sizeof *bare, cmp);
    qsort(traced_t, N, sizeof *traced_t, cmp);
    printf("open-heavy loop (100000 x open/close + stat), median of %d, alternating:\n", N);
    printf("  bare                     %.3f s\n", bare[N / 2]);
    printf("  eBPF, every call recorded %.3f s  (%.2fx bare)\n", traced_t[N / 2], traced_t[N / 2] / bare[N / 2]);
    printf("  records %ld (%.1f per loop iteration), %.1f MB through the ring buffer\n",
           atomic_load(&records), atomic_load(&records) / (double)(N * 100000), atomic_load(&bytes) / 1e6);
    return 0;
}
