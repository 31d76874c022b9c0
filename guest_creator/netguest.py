"""The networked variant of `v3 mkguest` (--net): the Debian kernel's NIC modules and their
dependencies in the initramfs, an /init that loads them, brings eth0 up with udhcpc and starts
busybox httpd on /www.

Modules come from the kernel's own package tree (the bzImage's `../lib/modules/VERSION/`);
Debian ships them uncompressed and without modules.dep, so dependencies are read from each
module's .modinfo (`depends=`) and loaded first.

The /init takes optional words from the kernel command line:
  v3net.ip=ADDR       a static address (netmask 255.255.255.0) instead of DHCP (e.g. on a TAP)
  v3net.fetch=URL     after the lease, `wget -O - URL` and print the page (outbound test)
  v3net.www=TEXT      the text of /www/index.html (default below)
"""
import os
import re
import tempfile

from v3tools.errors import V3Error

NIC_MODULES = ("8139too", "8139cp", "ne2k-pci")    # 8139cp: QEMU's rtl8139 (a C+ chip)
READY = "v3net: ready"
LEASE = "v3net: lease"
INDEX = "hello from the v3 guest"

UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc's hook (busybox ships none): configure the interface and say what was leased.
case "$1" in
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}"
    [ -n "$router" ] && route add default gw "$router"
    echo "v3net: lease $ip router ${router:-none} dns ${dns:-none}"
    ;;
esac
"""

NET_INIT = f"""#!/bin/sh
# /init of a `v3 mkguest --net` initramfs: NIC modules, DHCP on eth0, httpd on /www.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in $(cat /lib/modules/load-order); do insmod /lib/modules/$m.ko 2>/dev/null; done
ifconfig lo 127.0.0.1 up
ifconfig eth0 up
www="{INDEX}"
for word in $(cat /proc/cmdline); do
  case "$word" in
    v3net.www=*) www="${{word#v3net.www=}}" ;;
    v3net.fetch=*) fetch="${{word#v3net.fetch=}}" ;;
    v3net.ip=*) ip="${{word#v3net.ip=}}" ;;
  esac
done
if [ -n "$ip" ]; then
  ifconfig eth0 "$ip" netmask 255.255.255.0 up && echo "v3net: static $ip"
else
  udhcpc -i eth0 -s /etc/udhcpc.sh -n -q -t 10
fi
mkdir -p /www
echo "$www" > /www/index.html
httpd -p 80 -h /www
if [ -n "$fetch" ]; then
  echo "v3net: fetched [$(wget -q -O - "$fetch")]"
fi
echo "{READY}"
while true; do
    setsid cttyhack sh
done
"""


def modules_dir(kernel):
    """lib/modules/VERSION next to a kernel at .../boot/vmlinuz-VERSION."""
    name = os.path.basename(kernel)
    if not name.startswith("vmlinuz-"):
        raise V3Error(f"--net: cannot tell the kernel version of {kernel} (expected "
                      f"vmlinuz-VERSION, as Debian names it)")
    version = name[len("vmlinuz-"):]
    root = os.path.dirname(os.path.dirname(os.path.abspath(kernel)))
    for base in (os.path.join(root, "lib", "modules", version),
                 os.path.join(root, "usr", "lib", "modules", version),
                 os.path.join("/lib/modules", version)):
        if os.path.isdir(base):
            return base
    raise V3Error(f"--net: no modules for kernel {version} (looked in {root}/lib/modules; "
                  f"unpack the whole linux-image package)")


def _index(mdir):
    found = {}
    for dirpath, _, files in os.walk(mdir):
        for f in files:
            if f.endswith(".ko"):
                found[f[:-3].replace("-", "_")] = os.path.join(dirpath, f)
    return found


def _depends(path):
    with open(path, "rb") as f:
        data = f.read()
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
    if not m or not m.group(1):
        return []
    return [d.decode() for d in m.group(1).split(b",") if d]


def resolve(mdir, names=NIC_MODULES):
    """[(name, path)] for `names` and their dependencies, dependencies first."""
    index = _index(mdir)
    order = []

    def visit(name, chain):
        key = name.replace("-", "_")
        if key in chain:
            raise V3Error(f"--net: module dependency loop through {name}")
        if any(k == key for k, _ in order):
            return
        path = index.get(key)
        if path is None:
            raise V3Error(f"--net: module {name} is not in {mdir}")
        for dep in _depends(path):
            visit(dep, chain | {key})
        order.append((key, path))

    for n in names:
        visit(n, frozenset())
    return [(os.path.basename(p)[:-3], p) for _, p in order]


def net_additions(kernel, workdir):
    """(init script text, [(src, dest)]) for a networked guest of `kernel`."""
    mods = resolve(modules_dir(kernel))
    add = [(path, f"/lib/modules/{name}.ko") for name, path in mods]
    order = os.path.join(workdir, "load-order")
    with open(order, "w") as f:
        f.write("\n".join(name for name, _ in mods) + "\n")
    script = os.path.join(workdir, "udhcpc.sh")
    with open(script, "w") as f:
        f.write(UDHCPC_SCRIPT)
    os.chmod(script, 0o755)
    add += [(order, "/lib/modules/load-order"), (script, "/etc/udhcpc.sh")]
    return NET_INIT, add
