/* Test harness around model_run: reads N inputs from input.bin, writes N outputs to output.bin.
 * On the host it uses stdio (argv[1], argv[2]); on the Cortex-M it uses semihosting, reads the
 * board timer around every layer of the first inference and reports counts and the stack. */
#include <stdint.h>

#include "model.h"

static int8_t in_buf[MODEL_INPUT_SIZE];
static int8_t out_buf[MODEL_OUTPUT_SIZE];

#if defined(__arm__)

#define TIMER0_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER0_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER0_RELOAD (*(volatile uint32_t *)0x40000008u)

extern uint32_t __stack_limit, _estack;
#define STACK_PAINT 0xC0FFEE11u

static int32_t sh_call(int32_t op, void *arg) {
    register int32_t r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
static int32_t sh_open(const char *name, int32_t mode) {
    int32_t len = 0;
    while (name[len]) len++;
    int32_t args[3] = {(int32_t)name, mode, len};
    return sh_call(0x01, args);
}
static int32_t sh_read(int32_t fd, void *buf, int32_t len) {
    int32_t args[3] = {fd, (int32_t)buf, len};
    return len - sh_call(0x06, args);
}
static void sh_write(int32_t fd, const void *buf, int32_t len) {
    int32_t args[3] = {fd, (int32_t)buf, len};
    sh_call(0x05, args);
}
void sh_exit(int32_t status) {
    int32_t args[2] = {0x20026, status};
    sh_call(0x20, args);
    for (;;) {
    }
}
static int32_t out_fd = -1;
void sh_puts(const char *s) {
    int32_t len = 0;
    while (s[len]) len++;
    if (out_fd < 0) out_fd = sh_open(":tt", 4);
    sh_write(out_fd, s, len);
}
void sh_putu(const char *label, uint32_t v, const char *label2, uint32_t v2) {
    char buf[24];
    int i = 23;
    buf[i] = 0;
    sh_puts(label);
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    sh_puts(&buf[i]);
    if (label2) {
        i = 23;
        sh_puts(label2);
        do { buf[--i] = (char)('0' + v2 % 10); v2 /= 10; } while (v2);
        sh_puts(&buf[i]);
    }
    sh_puts("\n");
}

static volatile uint32_t ticks[MODEL_NUM_LAYERS + 1];
static volatile int32_t profiling;

__attribute__((noinline)) void model_mark(int32_t layer) {
    uint32_t t = TIMER0_VALUE;
    if (profiling) ticks[layer] = t;
}

/* An empty begin/end pair: the cost of one mark, subtracted from every layer. A function of its
 * own, so that the compiler cannot schedule main's other work between the two marks. */
static __attribute__((noinline)) uint32_t empty_mark_pair(void) {
    model_mark(0);
    model_mark(1);
    return ticks[0] - ticks[1];
}

/* The last layer mark the profiled (first) inference reached, or -1: the fault handler prints it,
 * so that a fault names its layer. */
__attribute__((cold)) int32_t harness_last_mark(void) {
    for (int32_t i = MODEL_NUM_LAYERS; i >= 0; i--)
        if (ticks[i]) return i;
    return -1;
}

int main(void) {
    TIMER0_CTRL = 0;
    TIMER0_RELOAD = 0xFFFFFFFFu;
    TIMER0_VALUE = 0xFFFFFFFFu;
    TIMER0_CTRL = 1;
    int32_t fin = sh_open("input.bin", 1);
    int32_t fout = sh_open("output.bin", 5);
    if (fin < 0 || fout < 0) {
        sh_puts("ERROR cannot open input.bin/output.bin\n");
        sh_exit(2);
    }
    int32_t flen_args[1] = {fin};
    int32_t n = sh_call(0x0C, flen_args) / MODEL_INPUT_SIZE;
    profiling = 1;
    uint32_t empty = empty_mark_pair();
    for (int32_t i = 0; i <= MODEL_NUM_LAYERS; i++) ticks[i] = 0; /* from here: marks reached */
    for (int32_t k = 0; k < n; k++) {
        if (sh_read(fin, in_buf, MODEL_INPUT_SIZE) != MODEL_INPUT_SIZE) {
            sh_puts("ERROR short read of input.bin\n");
            sh_exit(2);
        }
        profiling = (k == 0);
        uint32_t t0 = TIMER0_VALUE;
        model_run(in_buf, out_buf);
        uint32_t t1 = TIMER0_VALUE;
        profiling = 0;
        if (k == 0) {
            sh_putu("EMPTY ", empty, 0, 0);
            sh_putu("TOTAL ", t0 - t1, 0, 0);
            for (int32_t i = 0; i < MODEL_NUM_LAYERS; i++) sh_putu("LAYER ", (uint32_t)i, " ", ticks[i] - ticks[i + 1]);
        }
        sh_write(fout, out_buf, MODEL_OUTPUT_SIZE);
    }
    uint32_t *p = &__stack_limit;
    while (p < &_estack && *p == STACK_PAINT) p++;
    sh_putu("STACK ", (uint32_t)((uint8_t *)&_estack - (uint8_t *)p), 0, 0);
    sh_putu("RUNS ", (uint32_t)n, 0, 0);
    return 0;
}

#else /* host */

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin\n", argv[0]);
        return 2;
    }
    FILE *fin = fopen(argv[1], "rb");
    FILE *fout = fopen(argv[2], "wb");
    if (!fin || !fout) {
        fprintf(stderr, "error: cannot open %s or %s\n", argv[1], argv[2]);
        return 2;
    }
    long n = 0;
    while (fread(in_buf, 1, MODEL_INPUT_SIZE, fin) == MODEL_INPUT_SIZE) {
        model_run(in_buf, out_buf);
        fwrite(out_buf, 1, MODEL_OUTPUT_SIZE, fout);
        n++;
    }
    fclose(fin);
    fclose(fout);
    printf("RUNS %ld\n", n);
    return 0;
}

#endif
