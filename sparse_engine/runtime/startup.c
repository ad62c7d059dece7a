/* Cortex-M7 start-up for QEMU mps2-an500: FPU on, .data copied, .bss zeroed, stack painted,
 * main() run, exit status through semihosting. Every fault prints its PC, CFSR and the last layer
 * mark the profiled inference reached, and exits 3. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, __stack_limit, _estack;
int main(void);
void sh_exit(int32_t status);
void sh_puts(const char *s);
void sh_putu(const char *label, uint32_t v, const char *label2, uint32_t v2);
int32_t harness_last_mark(void);

void _init(void) {}
void _fini(void) {}

__attribute__((naked, noreturn)) void Reset_Handler(void) {
    __asm__ volatile(
        "ldr r0, =0xE000ED88\n"
        "ldr r1, [r0]\n"
        "orr r1, r1, #(0xF << 20)\n"
        "str r1, [r0]\n"
        "dsb\n"
        "isb\n"
        "b reset_c\n");
}

__attribute__((used, noreturn)) void reset_c(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss; dst++) *dst = 0;
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (dst = &__stack_limit; (uint32_t)dst < sp - 64; dst++) *dst = 0xC0FFEE11u;
    sh_exit(main());
    for (;;) {
    }
}

__attribute__((used)) void fault_report(uint32_t *frame) {
    sh_putu("FAULT pc=", frame[6], " cfsr=", *(volatile uint32_t *)0xE000ED28u);
    int32_t mark = harness_last_mark();
    if (mark >= 0) sh_putu("MARK ", (uint32_t)mark, 0, 0);
    sh_exit(3);
}

__attribute__((naked)) void Fault_Handler(void) {
    __asm__ volatile("tst lr, #4\n ite eq\n mrseq r0, msp\n mrsne r0, psp\n b fault_report\n");
}

__attribute__((section(".isr_vector"), used)) const void *const vector_table[16] = {
    &_estack, (void *)Reset_Handler, (void *)Fault_Handler, (void *)Fault_Handler,
    (void *)Fault_Handler, (void *)Fault_Handler, (void *)Fault_Handler, 0, 0, 0, 0,
    (void *)Fault_Handler, (void *)Fault_Handler, 0, (void *)Fault_Handler, (void *)Fault_Handler,
};
