#!/usr/bin/env bash
# switchyard's VM harness (test/vm/README.md): adapted from the team's proven recipe; cache in
# /var/cache/switchyard-vm, `conntrack` among the host tools the guest uses.
#
# run-in-vm.sh — run a shell command as root inside a throw-away QEMU guest that
# boots a stock Debian kernel (which has IPVS, dummy, veth, nf_tables, ipset, ...)
# and sees the host's whole filesystem.
#
#   ./run-in-vm.sh 'ipvsadm -Ln && node --version'     # one argument = a bash -c string
#   ./run-in-vm.sh node --test dist/e2e/                # several = argv, quoted for you
#   ./run-in-vm.sh --prepare                            # only fill the cache, print versions
#
# The command runs as root with the host's cwd as cwd and stdin from /dev/null; its
# stdout and stderr stream back to this script's stdout and stderr, and this script
# exits with the command's exit status. If the VM itself fails it exits 125 and shows
# the guest console; 124 means IPVS_VM_TIMEOUT was hit.
#
# Guest filesystem: host "/" over virtio-9p (read-only on the host side) under an
# overlayfs whose upper layer is a tmpfs in guest RAM: everything looks writable in
# the guest, but nothing is written back to the host, except in the directories
# listed in IPVS_VM_RW_DIRS, which are shared read-write at the same path.
# The guest has NO network card (-nodefaults): its traffic can never leave it.
#
# Environment (all optional):
#   IPVS_VM_CACHE         cache folder (default /var/cache/switchyard-vm)
#   IPVS_VM_KERNEL_PKG    Debian kernel package (default: the one linux-image-amd64
#                         depends on, resolved once, then pinned in $IPVS_VM_CACHE/kernel-pkg)
#   IPVS_VM_REFRESH=1     re-resolve linux-image-amd64 (after a Debian kernel update) and
#                         delete the other kernels from the cache
#   IPVS_VM_MEM           guest RAM in MiB (default 2048; only what the guest touches is used)
#   IPVS_VM_SMP           guest vCPUs (default: the host's nproc)
#   IPVS_VM_TIMEOUT       seconds before the guest is killed -> exit 124 (default 1800)
#   IPVS_VM_MODULES       modules loaded before the command (default: ip_vs ip_vs_rr
#                         ip_vs_wrr ip_vs_sh nf_conntrack dummy veth); others load on demand
#   IPVS_VM_RW_DIRS       colon-separated host dirs shared read-write, same path in the guest
#   IPVS_VM_PASSENV       space-separated names of host env vars to pass in (CI always is)
#   IPVS_VM_HOST_PACKAGES Debian packages whose binaries guest commands use from the host fs
#                         (default: ipvsadm ipset iptables nftables iproute2 conntrack; "" to skip)
#   IPVS_VM_9P_CACHE      9p cache mode of the host root: loose (default), mmap or none
#   IPVS_VM_ACCEL         qemu -accel (default tcg,thread=multi; kvm does NOT work on a
#                         KVM_PVM host, see README.md)
#   IPVS_VM_CPU           qemu -cpu (default max)
#   IPVS_VM_VERBOSE=1     print progress and timings on stderr
#   IPVS_VM_DEBUG=1       also print the guest's kernel console at the end
#   IPVS_VM_KERNEL_LOG    kernel log options (default "quiet loglevel=3")
#   IPVS_VM_KEEP=1        keep the per-run transfer folder (its path is printed)
set -euo pipefail

CACHE=${IPVS_VM_CACHE:-/var/cache/switchyard-vm}
MEM=${IPVS_VM_MEM:-2048}
SMP=${IPVS_VM_SMP:-$(nproc)}
TIMEOUT=${IPVS_VM_TIMEOUT:-1800}
MODULES=${IPVS_VM_MODULES-ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh nf_conntrack dummy veth}
HOST_PACKAGES=${IPVS_VM_HOST_PACKAGES-ipvsadm ipset iptables nftables iproute2 conntrack}
P9CACHE=${IPVS_VM_9P_CACHE:-loose}
ACCEL=${IPVS_VM_ACCEL:-tcg,thread=multi}
VERBOSE=${IPVS_VM_VERBOSE:-0}
MSIZE=512000
# what the initramfs needs to mount the host root over virtio-9p and build the overlay
BOOT_MODULES="virtio_pci 9pnet_virtio 9p overlay"

T0=$(date +%s.%N)
log() { if [ "$VERBOSE" = 1 ]; then echo "[run-in-vm] $*" >&2; fi; }
die() { echo "[run-in-vm] ERROR: $*" >&2; exit 125; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

[ "$(id -u)" = 0 ] || die "must run as root"

# ------------------------------------------------------------------ the cache ---
apt_lists_ready() { # no `| grep -q`: with pipefail, apt-cache's SIGPIPE would fail it
  local out; out=$(apt-cache policy busybox-static 2>/dev/null) || return 1
  [[ $out == *"Candidate: "[0-9]* ]]
}
ensure_apt_lists() {
  apt_lists_ready && return 0
  log "apt-get update"
  apt-get update -qq >&2 || die "apt-get update failed"
}
apt_install() {
  ensure_apt_lists
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 \
    || die "apt-get install $* failed"
}
apt_download() { # $1 = package; downloads into $CACHE/debs, prints the .deb's path
  ensure_apt_lists
  mkdir -p "$CACHE/debs"
  (cd "$CACHE/debs" && apt-get download -qq -o APT::Sandbox::User=root "$1" >&2) \
    || die "apt-get download $1 failed"
  ls -t "$CACHE/debs/$1"_*.deb | head -n1
}
pkg_installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

# Print the files (relative to the modules dir) of modules $2.. and their deps, deps first.
module_closure() {
  local moddir=$1; shift
  local -A seen=()
  local out=()
  _visit() {
    local name=${1//-/_} line file deps d
    line=$(grep -E "(^|/)${name}\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" | head -n1) || true
    if [ -z "$line" ]; then
      grep -qE "(^|/)${name}\.ko$" "$moddir/modules.builtin" && return 0  # built in
      die "module $1 not found in $moddir"
    fi
    file=${line%%:*}; deps=${line#*:}
    [ -n "${seen[$file]:-}" ] && return 0
    seen[$file]=1
    for d in $deps; do d=${d##*/}; _visit "${d%%.ko*}"; done
    out+=("$file")
  }
  local m; for m in "$@"; do _visit "$m"; done
  printf '%s\n' "${out[@]}"
}

# bzImage -> uncompressed ELF vmlinux. QEMU boots an ELF with a PVH note directly,
# which skips the firmware's real-mode setup and the in-guest decompression
# (about 4 s under TCG). Prints nothing if it cannot.
extract_vmlinux() {
  local img=$1 out=$2 magic dec off
  for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
    dec=${magic%%:*}
    for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$img" 2>/dev/null | cut -d: -f1 | head -n3); do
      case $dec in
        xz)   tail -c +$((off+1)) "$img" | xz -dc --single-stream > "$out" 2>/dev/null || true ;;
        zstd) tail -c +$((off+1)) "$img" | zstd -dcq > "$out" 2>/dev/null || true ;;
        gzip) tail -c +$((off+1)) "$img" | gzip -dc > "$out" 2>/dev/null || true ;;
      esac
      if [ "$(head -c 4 "$out" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
        return 0
      fi
    done
  done
  rm -f "$out"
}

# Stage 1 = PID 1 in the initramfs (busybox sh). Mounts the host root over 9p with a
# tmpfs overlay, mounts the per-run transfer share at /run/ipvs-vm, sources its
# stage1.conf, sets the guest up (mounts, kernel modules, modprobe, lo) with static
# busybox from RAM (exec'ing host binaries over 9p costs ~0.2 s each under TCG), and
# hands over to /run/ipvs-vm/stage2.sh. On any failure it says why on the console
# and reboots; -no-reboot turns that into a qemu exit, so the host never hangs.
read -r -d '' STAGE1 <<'EOF_STAGE1' || true
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "ipvs-vm stage1: $*" >&2; echo b > /proc/sysrq-trigger; sleep 10; exit 1; }
mkdir -p /proc /sys /dev /lower /rw /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
T_INIT=$(cut -d' ' -f1 /proc/uptime)
KVER=$(uname -r)
for m in $(cat /boot-modules); do insmod "/lib/modules/$KVER/$m" || fail "insmod $m"; done
P9CACHE=loose; MSIZE=512000
for kv in $(cat /proc/cmdline); do
  case "$kv" in
    ipvsvm.p9cache=*) P9CACHE=${kv#*=} ;;
    ipvsvm.msize=*) MSIZE=${kv#*=} ;;
  esac
done
P9="trans=virtio,version=9p2000.L,msize=$MSIZE"
i=0
until mount -t 9p -o "ro,$P9,cache=$P9CACHE" hostroot /lower 2>/dev/null; do
  i=$((i+1)); [ $i -lt 100 ] || fail "cannot mount 9p hostroot"; sleep 0.1
done
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "tmpfs /rw"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot \
  || fail "overlay mount"
R=/newroot
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs $R/run || fail "tmpfs /run"
mkdir -p $R/run/ipvs-vm $R/run/netns $R/run/lock
mount -t 9p -o "$P9,cache=none" xfer $R/run/ipvs-vm || fail "cannot mount 9p xfer"
X=$R/run/ipvs-vm
echo "$T_INIT" > $X/t_init
. $X/stage1.conf || fail "stage1.conf"
# the kernel's own modules (from the extracted .deb in the cache) and busybox's
# module tools in the guest's /usr/sbin (the host has no kmod of its own)
mkdir -p $R/lib/modules/$KVER
mount --bind $R$MODDIR $R/lib/modules/$KVER || fail "bind $MODDIR"
mount --bind $R$MODDIR /lib/modules/$KVER || fail "bind $MODDIR"
for t in modprobe insmod rmmod lsmod modinfo depmod; do ln -sf $BB $R/usr/sbin/$t; done
# the kernel runs this path for request_module() (crypto-crc32c, rtnl-link-dummy, ...)
# relative to init's root: initramfs now, the overlay after switch_root
echo /bin/modprobe > /proc/sys/kernel/modprobe
for m in $MODULES; do modprobe $m || echo "ipvs-vm: modprobe $m failed" >> $X/stderr; done
echo /usr/sbin/modprobe > /proc/sys/kernel/modprobe
i=0
for d in $RW_DIRS; do
  mkdir -p "$R$d" && mount -t 9p -o "$P9,cache=none" rw$i "$R$d" \
    || echo "ipvs-vm: cannot mount $d" >> $X/stderr
  i=$((i+1))
done
for d in proc sys dev; do mount --move /$d $R/$d || fail "move /$d"; done
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs $R/dev/shm
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
mount -t debugfs debugfs $R/sys/kernel/debug 2>/dev/null
ln -sfn /proc/self/fd $R/dev/fd; ln -sfn /proc/self/fd/0 $R/dev/stdin
ln -sfn /proc/self/fd/1 $R/dev/stdout; ln -sfn /proc/self/fd/2 $R/dev/stderr
hostname ipvs-vm
ip link set lo up
exec switch_root $R $BB sh /run/ipvs-vm/stage2.sh
EOF_STAGE1

# Stage 2 = PID 1 after switch_root (static busybox sh from the host fs): runs the
# command, stores its exit status on the transfer share and powers the guest off.
read -r -d '' STAGE2 <<'EOF_STAGE2' || true
X=/run/ipvs-vm
cut -d' ' -f1 /proc/uptime > $X/t_cmd_start
/bin/bash $X/cmd.sh </dev/null >>$X/stdout 2>>$X/stderr
echo $? > $X/rc.tmp
cut -d' ' -f1 /proc/uptime > $X/t_cmd_end
mv $X/rc.tmp $X/rc
sync
echo o > /proc/sysrq-trigger
sleep 5
echo b > /proc/sysrq-trigger
EOF_STAGE2

prepare() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9

  command -v qemu-system-x86_64 >/dev/null || apt_install qemu-system-x86
  local missing=() p deb
  for p in $HOST_PACKAGES; do pkg_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

  # busybox-static: initramfs userland, PID 1, and modprobe & co. inside the guest
  BB=$CACHE/busybox/bin/busybox
  if [ ! -x "$BB" ]; then
    log "fetching busybox-static"
    deb=$(apt_download busybox-static)
    rm -rf "$CACHE/busybox.tmp" && mkdir -p "$CACHE/busybox.tmp"
    dpkg-deb -x "$deb" "$CACHE/busybox.tmp"
    dpkg-deb -f "$deb" Package Version > "$CACHE/busybox.tmp/.pkg"
    rm -rf "$CACHE/busybox" && mv "$CACHE/busybox.tmp" "$CACHE/busybox"
    rm -f "$deb"
  fi

  # the kernel: a stock Debian linux-image-*-amd64, extracted, never installed
  KPKG=${IPVS_VM_KERNEL_PKG:-}
  if [ -z "$KPKG" ] && [ "${IPVS_VM_REFRESH:-0}" != 1 ] && [ -s "$CACHE/kernel-pkg" ]; then
    KPKG=$(cat "$CACHE/kernel-pkg")
  fi
  if [ -z "$KPKG" ]; then
    ensure_apt_lists
    KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
    [ -n "$KPKG" ] || die "cannot resolve linux-image-amd64"
  fi
  KDIR=$CACHE/$KPKG
  if [ ! -e "$KDIR/.ok" ]; then
    log "fetching $KPKG"
    deb=$(apt_download "$KPKG")
    rm -rf "$KDIR" "$KDIR.tmp" && mkdir -p "$KDIR.tmp"
    dpkg-deb -x "$deb" "$KDIR.tmp"
    local kv
    kv=$(ls "$KDIR.tmp/lib/modules" 2>/dev/null || ls "$KDIR.tmp/usr/lib/modules")
    if [ ! -d "$KDIR.tmp/lib/modules/$kv" ]; then  # merged-/usr kernel packages
      mkdir -p "$KDIR.tmp/lib/modules" && mv "$KDIR.tmp/usr/lib/modules/$kv" "$KDIR.tmp/lib/modules/"
    fi
    log "depmod $kv"
    "$BB" depmod -b "$KDIR.tmp" "$kv"   # the .deb has no modules.dep: its postinst makes it
    extract_vmlinux "$KDIR.tmp/boot/vmlinuz-$kv" "$KDIR.tmp/boot/vmlinux-$kv"
    dpkg-deb -f "$deb" Package Version > "$KDIR.tmp/.pkg"
    touch "$KDIR.tmp/.ok"
    mv "$KDIR.tmp" "$KDIR"
    rm -f "$deb"
  fi
  echo "$KPKG" > "$CACHE/kernel-pkg"
  if [ "${IPVS_VM_REFRESH:-0}" = 1 ]; then
    for p in "$CACHE"/linux-image-*; do [ "$p" = "$KDIR" ] || rm -rf "$p"; done
  fi
  KVER=$(ls "$KDIR/lib/modules")
  KERNEL=$KDIR/boot/vmlinux-$KVER
  [ -s "$KERNEL" ] || KERNEL=$KDIR/boot/vmlinuz-$KVER
  MODDIR=$KDIR/lib/modules/$KVER

  # initramfs: busybox + the few boot modules + stage 1; rebuilt when stage 1 changes
  local sum t m
  sum=$(printf '%s\n%s\n' "$STAGE1" "$BOOT_MODULES" | sha256sum | cut -c1-16)
  INITRD=$KDIR/initramfs-$sum.cpio.gz
  if [ ! -s "$INITRD" ]; then
    log "building $INITRD"
    t=$(mktemp -d)
    mkdir -p "$t/bin" "$t/lib/modules/$KVER"
    cp "$BB" "$t/bin/busybox"
    printf '%s\n' "$STAGE1" > "$t/init"; chmod 755 "$t/init"
    module_closure "$MODDIR" $BOOT_MODULES > "$t/boot-modules"
    while read -r m; do
      mkdir -p "$t/lib/modules/$KVER/$(dirname "$m")"
      cp "$MODDIR/$m" "$t/lib/modules/$KVER/$m"
    done < "$t/boot-modules"
    (cd "$t" && find . | "$BB" cpio -o -H newc 2>/dev/null | gzip -1 > "$INITRD.tmp")
    mv "$INITRD.tmp" "$INITRD"
    rm -rf "$t"
  fi
  flock -u 9
}

prepare
if [ "${1:-}" = "--prepare" ]; then
  echo "kernel:  $(tr '\n' ' ' < "$KDIR/.pkg")($(basename "$KERNEL"))"
  echo "busybox: $(tr '\n' ' ' < "$CACHE/busybox/.pkg" 2>/dev/null)"
  echo "qemu:    $(qemu-system-x86_64 --version | head -n1)"
  echo "cache:   $CACHE ($(du -sh "$CACHE" | cut -f1))"
  exit 0
fi
[ "${1:-}" = "--" ] && shift
[ $# -ge 1 ] || die "usage: $0 'shell command' | $0 program args... | $0 --prepare"
if [ $# -eq 1 ]; then CMD=$1; else CMD=$(printf '%q ' "$@"); fi
log "cache ready after $(since "$T0")s: $KPKG, $(basename "$KERNEL")"

# -------------------------------------------------------------------- the run ---
X=$(mktemp -d "${TMPDIR:-/tmp}/ipvs-vm.XXXXXX")
QPID=""; TPIDS=()
cleanup() {
  local rc=$?
  if [ -n "$QPID" ]; then kill "$QPID" 2>/dev/null || true; fi
  for p in "${TPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "${IPVS_VM_KEEP:-0}" = 1 ]; then echo "[run-in-vm] kept $X" >&2; else rm -rf "$X"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

{
  echo "export HOME=/root LANG=C.UTF-8 TERM=dumb IPVS_VM=1"
  echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  for v in CI ${IPVS_VM_PASSENV:-}; do
    if [ -n "${!v+x}" ]; then printf 'export %s=%q\n' "$v" "${!v}"; fi
  done
  printf 'cd %q || exit 125\n' "$PWD"
  printf 'exec /bin/bash -c %q\n' "$CMD"
} > "$X/cmd.sh"
printf '%s\n' "$STAGE2" > "$X/stage2.sh"

VIRTFS_RW=(); RW_LIST=""; i=0
IFS=: read -r -a rwdirs <<< "${IPVS_VM_RW_DIRS:-}"
for d in "${rwdirs[@]}"; do
  [ -n "$d" ] || continue
  d=$(realpath "$d"); [ -d "$d" ] || die "IPVS_VM_RW_DIRS: $d is not a directory"
  [[ $d != *[[:space:]]* ]] || die "IPVS_VM_RW_DIRS: no spaces please: $d"
  VIRTFS_RW+=(-virtfs "local,path=$d,mount_tag=rw$i,security_model=none,multidevs=remap")
  RW_LIST+="$d "; i=$((i+1))
done
{
  printf 'MODDIR=%q\nBB=%q\nMODULES=%q\nRW_DIRS=%q\n' "$MODDIR" "$BB" "$MODULES" "$RW_LIST"
} > "$X/stage1.conf"
: > "$X/stdout"; : > "$X/stderr"

APPEND="console=ttyS0 ${IPVS_VM_KERNEL_LOG:-quiet loglevel=3} panic=-1 mitigations=off nokaslr"
APPEND+=" ipvsvm.p9cache=$P9CACHE ipvsvm.msize=$MSIZE"
FIRMWARE=()
[ -r /usr/share/qemu/qboot.rom ] && FIRMWARE=(-bios /usr/share/qemu/qboot.rom)
QEMU=(qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot
  -M q35 -accel "$ACCEL" -cpu "${IPVS_VM_CPU:-max}" -smp "$SMP" -m "$MEM" "${FIRMWARE[@]}"
  -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND"
  -serial "file:$X/console.log"
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
  -virtfs "local,path=$X,mount_tag=xfer,security_model=none,multidevs=remap"
  "${VIRTFS_RW[@]}")
log "booting: ${QEMU[*]}"
T1=$(date +%s.%N)
timeout -k 5 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$X/qemu.log" 2>&1 &
QPID=$!
tail -n +1 -s 0.2 -F --pid="$QPID" "$X/stdout" 2>/dev/null & TPIDS+=($!)
tail -n +1 -s 0.2 -F --pid="$QPID" "$X/stderr" >&2 2>/dev/null & TPIDS+=($!)
QRC=0; wait "$QPID" || QRC=$?
QPID=""
for p in "${TPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
TPIDS=()

if [ "$VERBOSE" = 1 ]; then
  rd() { cat "$X/$1" 2>/dev/null || echo '?'; }
  log "guest uptime: /init $(rd t_init)s, command $(rd t_cmd_start)s .. $(rd t_cmd_end)s"
  log "qemu wall $(since "$T1")s, total $(since "$T0")s, guest RAM ${MEM} MiB, ${SMP} vCPU, qemu exit $QRC"
fi
if [ "${IPVS_VM_DEBUG:-0}" = 1 ] || [ ! -s "$X/rc" ]; then
  { echo "----- qemu output -----"; cat "$X/qemu.log"
    echo "----- guest console (last 60 lines) -----"; tail -n 60 "$X/console.log"; } >&2
fi
if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
  echo "[run-in-vm] timed out after ${TIMEOUT}s" >&2; exit 124
fi
[ -s "$X/rc" ] || die "the guest reported no exit status (qemu exit $QRC)"
exit "$(cat "$X/rc")"
