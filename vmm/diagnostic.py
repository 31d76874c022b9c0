"""The fail-stop diagnostic: where the CPU is (CS:EIP, linear address, mode, CPL), its
registers, the code bytes there, the last exits, and the VGA text screen's last lines."""


def diagnostic(machine, exc=None):
    cpu, env = machine.cpu, machine.cpu.env
    lines = []
    try:
        sel, eip, base = cpu.cs_ip()
        lines.append(f"at CS:EIP {sel:04x}:{eip:08x} (linear {cpu.linear_pc():#010x}), "
                     f"mode {cpu.mode()}, CPL {env.cpl}")
        if env.hflags & (1 << 14):        # IA-32e mode: the full 64-bit registers
            names = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi")
            g = [f"{names[i].upper()}={env.reg(i):016x}" for i in range(8)]
            g += [f"R{i}={env.reg(i):016x}" for i in range(8, 16)]
            for k in range(0, 16, 4):
                lines.append("  " + " ".join(g[k:k + 4]))
        else:
            g = [f"{n.upper()}={cpu.reg(n):08x}" for n in ("eax", "ebx", "ecx", "edx")]
            g2 = [f"{n.upper()}={cpu.reg(n):08x}" for n in ("esi", "edi", "ebp", "esp")]
            lines.append("  " + " ".join(g))
            lines.append("  " + " ".join(g2))
        lines.append(f"  EFLAGS={cpu.eflags:08x} CR0={env.cr(0):08x} CR2={env.cr(2):08x} "
                     f"CR3={env.cr(3):08x} CR4={env.cr(4):08x}")
        segs = []
        for i, name in enumerate(("ES", "CS", "SS", "DS", "FS", "GS")):
            s, b, lim, fl = env.seg(i)
            segs.append(f"{name}={s:04x}[{b:08x}]")
        lines.append("  " + " ".join(segs))
        try:
            code = cpu.read_linear(cpu.linear_pc(), 16, user=False)
            lines.append("  code at EIP: " + code.hex(" "))
        except Exception as e:   # the code page itself may be unreadable
            lines.append(f"  code at EIP: unreadable ({e})")
    except Exception as e:       # never let the diagnostic hide the stop
        lines.append(f"  (CPU state unavailable: {e})")
    recent = machine.stats.recent_text(16)
    if recent:
        lines.append("  last exits: " + "; ".join(recent))
    fast = machine.stats.recent_fast_text(8)
    if fast:
        lines.append("  last port accesses done by device fast paths in C: " + "; ".join(fast))
    try:
        from vmm.screen import screen_tail
        screen = screen_tail(machine.ctx.mem)
    except Exception:            # never let the diagnostic hide the stop
        screen = []
    if screen:
        # a guest that says nothing on serial often said why on its VGA screen
        lines.append("  VGA text screen (last lines):")
        lines += [f"  | {line}" for line in screen]
    return "\n".join(lines)



def explain_ucerror(exc):
    from unicorn import unicorn_const as C
    return {
        C.UC_ERR_READ_UNMAPPED: "a read of unmapped memory",
        C.UC_ERR_WRITE_UNMAPPED: "a write of unmapped memory",
        C.UC_ERR_FETCH_UNMAPPED: "an instruction fetch from unmapped memory",
        C.UC_ERR_FETCH_PROT: "an instruction fetch from an address with no RAM (a device or "
                             "open bus): code cannot run there",
        C.UC_ERR_INSN_INVALID: "an invalid instruction",
        C.UC_ERR_EXCEPTION: "an unhandled CPU exception",
    }.get(exc.errno, "an emulator error")


