/* Exported dlsym and dlopen of the shim (see dlhook.h). They end in a jump, never a call, to glibc's
 * functions, so that glibc sees the application's return address as its caller: dlsym(RTLD_NEXT, ...)
 * and dlopen's RUNPATH search stay right for every other caller. The one exception, a RTLD_DEEPBIND
 * load by path of a module that needs libpq, goes through pql_dlopen_redirect (a path needs no
 * search). */
    .text

    .globl dlsym
    .type dlsym, @function
dlsym:
    cmpq $-1, %rdi              /* RTLD_NEXT: caller-relative, straight to glibc */
    je 1f
    testq %rdi, %rdi            /* RTLD_DEFAULT: the interposers come first in that scope anyway */
    je 1f
    jmp pql_dlsym_handle        /* an explicit handle: libpq's own lookups are answered by the shim */
1:  movq pql_real_dlsym(%rip), %rax
    testq %rax, %rax
    jz 2f
    jmp *%rax
2:  pushq %rdi                  /* called before the shim's constructor: resolve, then jump */
    pushq %rsi
    subq $8, %rsp
    call pql_dlhook_resolve
    addq $8, %rsp
    popq %rsi
    popq %rdi
    jmp *pql_real_dlsym(%rip)
    .size dlsym, .-dlsym

    .globl dlopen
    .type dlopen, @function
dlopen:
    pushq %rdi
    pushq %rsi
    subq $8, %rsp
    call pql_dlopen_mode        /* (file, mode) -> mode, or -1: PQL_DLOPEN_REDIRECT */
    addq $8, %rsp
    popq %rsi
    popq %rdi
    cmpl $-1, %eax
    je 1f
    movl %eax, %esi
    jmp *pql_real_dlopen(%rip)
1:  jmp pql_dlopen_redirect     /* (file, mode): a module that needs libpq, loaded as asked, then pointed at the shim */
    .size dlopen, .-dlopen

    .section .note.GNU-stack, "", @progbits
