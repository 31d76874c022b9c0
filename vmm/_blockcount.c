/* A Unicorn UC_HOOK_BLOCK callback that only counts translated-block executions, for
 * `v3 run --telemetry`. A Python block hook would cost about 0.5 us per block; this costs a
 * C call. vmm/telemetry.py registers it through ctypes; without this compiled helper the
 * telemetry reports blocks as not counted. */
#include <Python.h>
#include <stdint.h>

void v3_count_block(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    (void)uc;
    (void)address;
    (void)size;
    (*(uint64_t *)user_data)++;
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_blockcount",
    "Counting block hook for Unicorn (use its v3_count_block symbol through ctypes).", -1, NULL,
};

PyMODINIT_FUNC PyInit__blockcount(void)
{
    return PyModule_Create(&module);
}
