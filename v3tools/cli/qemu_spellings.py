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
}

DRIVE_IGNORED = ("id", "cache", "aio", "discard", "detect-zeroes", "werror", "rerror", "bus",
                 "unit", "index")


def drive(spec):
    """QEMU's -drive file=F[,if=ide|floppy][,media=disk|cdrom][,format=raw][,readonly=on]
    [,snapshot=on] as v3 run options (--hda/--cdrom/--fda, --hda-readonly, --snapshot)."""
    fields = {}
    for part in spec.split(","):
        key, eq, value = part.partition("=")
        if not eq:
            raise V3Error(f"-drive {spec}: expected key=value pairs (file=disk.img,format=raw)")
        fields[key] = value
    unknown = [k for k in fields if k not in ("file", "if", "media", "format", "readonly",
                                              "snapshot") + DRIVE_IGNORED]
    if unknown:
        raise V3Error(f"-drive {spec}: not supported by v3 run: {', '.join(unknown)}")
    if not fields.get("file"):
        raise V3Error(f"-drive {spec}: file= is needed")
    if fields.get("format", "raw") != "raw":
        raise V3Error(f"-drive {spec}: only format=raw (v3 run reads image files as they are)")
    interface = fields.get("if", "ide")
    media = fields.get("media", "disk")
    if interface not in ("ide", "floppy") or media not in ("disk", "cdrom"):
        raise V3Error(f"-drive {spec}: v3 run has IDE disks and CD-ROMs and a floppy "
                      f"(if=ide|floppy, media=disk|cdrom)")
    on = ("on", "true", "yes", "1", "")
    out = [{"floppy": "--fda"}.get(interface, "--cdrom" if media == "cdrom" else "--hda"),
           fields["file"]]
    if fields.get("readonly", "off") in on and out[0] == "--hda":
        out.append("--hda-readonly")
    if fields.get("snapshot", "off") in on:
        out.append("--snapshot")
    return out


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
    drive_next = False
    media = []
    for arg in args:
        if drive_next:
            extra = drive(arg)
            if extra[0] in media or extra[0] in args or extra[0][1:] in args:
                raise V3Error(f"-drive {arg}: one {extra[0][2:]} so far")
            media.append(extra[0])
            out += extra
            drive_next = False
            continue
        if expect_value:
            out.append(arg)
            expect_value = False
            continue
        if arg in ("-drive", "--drive"):
            drive_next = True
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
    if drive_next:
        raise V3Error("-drive needs a value (file=disk.img,format=raw)")
    return out
