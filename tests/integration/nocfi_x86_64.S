/* nocfi_call(fn): calls fn from a frame without unwind information (no .cfi_* directives, so no FDE),
 * with rbp pointing at the saved rbp and the return address above it, as frame-pointer code keeps it. */
    .text
    .globl nocfi_call
    .type nocfi_call, @function
nocfi_call:
    push %rbp
    mov %rsp, %rbp
    call *%rdi
    pop %rbp
    ret
    .size nocfi_call, .-nocfi_call
    .section .note.GNU-stack, "", @progbits
