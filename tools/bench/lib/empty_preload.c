/* A shared library that does nothing, preloaded by tools/bench/run in place of the shim: what any
 * LD_PRELOAD library costs a program, whatever it contains. The dynamic loader then searches one more
 * object for every symbol the program and its libraries bind at start-up (pgbench binds ~8,400), which
 * is hundreds of thousands of instructions in a program with many libraries; the benchmarks subtract it
 * to show the part of the shim's fixed cost that is the shim's own. One exported function, as the shim
 * exports a few dozen: an object with no dynamic symbols at all would be cheaper to search. */
int pqleak_bench_empty_preload(void);

int pqleak_bench_empty_preload(void)
{
    return 0;
}
