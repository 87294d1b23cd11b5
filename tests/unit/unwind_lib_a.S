/* unit.unwind's stale-rule check: pql_test_f(cb) calls cb with its CFA at rsp + 16 and rbp left alone;
 * unwind_lib_b.S has its call at the same offset with another rule (CFA at rbp + 16, rbp saved). */
    .text
    .globl pql_test_f
    .type pql_test_f, @function
pql_test_f:
    .cfi_startproc
    sub $8, %rsp
    .cfi_def_cfa_offset 16
    .byte 0x0f, 0x1f, 0x40, 0x00 /* a 4-byte nop: the call at offset 8, as in unwind_lib_b.S */
    call *%rdi
    add $8, %rsp
    .cfi_def_cfa_offset 8
    ret
    .cfi_endproc
    .size pql_test_f, .-pql_test_f
    .section .note.GNU-stack, "", @progbits
