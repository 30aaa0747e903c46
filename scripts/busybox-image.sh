#!/usr/bin/env bash
# Makes the default `busybox:latest` image from the host's static busybox, the way the
# official image is made: /bin/busybox, a link for every applet, a minimal /etc, CMD ["sh"].
# Usage: scripts/busybox-image.sh [berth CLI args before the command, e.g. -H unix:///x.sock]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
busybox=$(command -v busybox || true)
[[ -n $busybox ]] || { echo "busybox-image: no busybox on PATH (apt-get install busybox-static)" >&2; exit 1; }
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  [[ -x /bin/busybox ]] && busybox=/bin/busybox
fi

rootfs=$(mktemp -d /tmp/berth-busybox.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,home,var/spool/mail,var/www,dev,proc,sys}
chmod 1777 "$rootfs/tmp"
chmod 700 "$rootfs/root"
install -m 0755 "$busybox" "$rootfs/bin/busybox"
while read -r applet; do
  [[ $applet == bin/busybox ]] && continue
  mkdir -p "$rootfs/$(dirname "$applet")"
  ln -f "$rootfs/bin/busybox" "$rootfs/$applet"
done < <("$busybox" --list-full)
cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:8:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
GROUP
printf 'root:*::0:::::\nnobody:*::0:::::\n' > "$rootfs/etc/shadow"
chmod 640 "$rootfs/etc/shadow"

version=$("$busybox" 2>&1 | sed -n '1s/^BusyBox \([^ ]*\).*/\1/p')
tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -cf - . |
  "$here/bin/berth" "$@" import -c 'CMD ["sh"]' -m "BusyBox ${version} from the host's static busybox" - busybox:latest
