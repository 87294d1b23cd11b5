/* unit.unwind's stale-rule check: the call at the same offset as in unwind_lib_a.S, another rule. */
    .text
    .globl pql_test_f
    .type pql_test_f, @function
pql_test_f:
    .cfi_startproc
    push %rbp
    .cfi_def_cfa_offset 16
    .cfi_offset %rbp, -16
    mov %rsp, %rbp
    .cfi_def_cfa_register %rbp
    sub $16, %rsp
    call *%rdi
    leave
    .cfi_def_cfa %rsp, 8
    ret
    .cfi_endproc
    .size pql_test_f, .-pql_test_f
    .section .note.GNU-stack, "", @progbits
