"""QEMU's single-dash option names for `v3 run`.

`v3 run` answers to the option spellings of `qemu-system-x86_64` where QEMU has one: `-cdrom`,
`-hda`, `-serial`, `-smp`, `-snapshot` ... are rewritten to their `--` forms before parsing.
A QEMU option that v3 does not have is refused in one line ("not supported by v3 run: -X")
instead of click's generic usage error.
"""
import click

from v3tools.errors import V3Error

# QEMU name -> v3 run option (the same meaning)
RENAMED = {
    "cdrom": "--cdrom", "hda": "--hda", "fda": "--fda", "boot": "--boot", "bios": "--bios",
    "serial": "--serial", "smp": "--smp", "gdb": "--gdb", "monitor": "--monitor",
    "snapshot": "--snapshot", "nographic": "--nographic", "display": "--display",
    "no-reboot": "--no-reboot", "accel": "--accel", "machine": "--machine", "M": "--machine",
    "name": "--name", "plain-cdrom": "--plain-cdrom",
    "kernel": "--kernel", "initrd": "--initrd", "append": "--append",
    "nic": "--nic", "net": "--net", "redir": "--redir",
}

WHY_NOT = {
    "enable-kvm": "the CPU is emulated (-accel tcg)",
    "hdb": "one disk (-hda) so far", "hdc": "one disk (-hda) so far",
    "hdd": "one disk (-hda) so far", "fdb": "one floppy (-fda) so far",
    "drive": "use -hda, -cdrom or -fda",
}


class QemuSpellings(click.Command):
    """A click command that first rewrites QEMU's single-dash options."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, translate(self, args))


def translate(command, args):
    takes_value = set()
    for p in command.params:
        if isinstance(p, click.Option) and not p.is_flag:
            takes_value.update(p.opts)
    out = []
    expect_value = False
    for arg in args:
        if expect_value:
            out.append(arg)
            expect_value = False
            continue
        if arg == "--":
            out.append(arg)
            expect_value = True          # everything after stays as it is
            continue
        if len(arg) == 2 and arg[0] == "-" and arg[1] != "-" and arg[1] not in "msSkh":
            if arg[1] in RENAMED:
                arg = RENAMED[arg[1]]
            elif not arg[1].isdigit():
                raise V3Error(f"not supported by v3 run: {arg}")
        elif arg.startswith("-") and not arg.startswith("--") and len(arg) > 2 \
                and not arg[1:].replace(".", "").isdigit():
            name = arg[1:]
            if name in RENAMED:
                arg = RENAMED[name]
            elif name[0] in "sSmkh" and all(c in "sS" for c in name):
                pass                     # combined single-letter flags (-sS)
            else:
                why = WHY_NOT.get(name)
                raise V3Error(f"not supported by v3 run: -{name}" + (f" ({why})" if why else ""))
        out.append(arg)
        expect_value = arg in takes_value
    return out
