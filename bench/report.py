#!/usr/bin/env python3
"""Turn bench JSON lines into a table with ratios, latest.json and PNG plots.
usage: report.py RAW_JSON_LINES WHERE OUTDIR"""
import collections, json, os, platform, statistics, subprocess, sys, time

raw, where, outdir = sys.argv[1], sys.argv[2], sys.argv[3]
rows, bad = [], []
for l in open(raw):
    if not l.startswith("{"):
        continue
    try:
        rows.append(json.loads(l))
    except ValueError:  # a row cut short (a dying lab) or with an empty value
        bad.append(l.strip())
for l in bad:
    print(f"bench: malformed row skipped: {l[:200]}", file=sys.stderr)

def ver(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except Exception:
        return "unknown"

table = []  # (measure, ours, peer, ratio, unit, note)
codec = {}
for r in rows:
    if r["bench"] == "codec":
        codec[(r["kind"], r["op"])] = r
for kind in ("zero", "text", "code", "random"):
    mc = codec.get((kind, "memcpy"))
    for op in ("zero_scan", "encode", "decode"):
        r = codec.get((kind, op))
        if r and mc:
            table.append((f"codec {op} {kind} pages", r["gbps"], mc["gbps"], r["gbps"] / mc["gbps"],
                          "GB/s", f"vs memcpy; wire/page {r['ratio']:.3f}" if op != "zero_scan" else "vs memcpy"))

def med(vmm, key, bench):
    v = [r[key] for r in rows if r["bench"] == bench and r["vmm"] == vmm]
    return (statistics.median(v), len(v)) if v else (None, 0)

# Boot (bench/boot.sh): vs QEMU as-is and vs QEMU with a free-page-reporting balloon.
for peer, pname in (("qemu", "QEMU-KVM"), ("qemu-balloon", "QEMU-KVM + virtio-balloon free-page-reporting")):
    for key, unit, label in (("boot_s", "s", "boot to GUEST UP"), ("rss_kib", "MiB", "RSS after boot")):
        o, no = med("ours", key, "boot")
        q, nq = med(peer, key, "boot")
        if o is not None and q is not None:
            if unit == "MiB":
                o, q = o / 1024, q / 1024
            table.append((label, o, q, o / q, unit, f"vs {pname}, median of {min(no, nq)}"))

# Snapshot/restore (bench/snapshot.sh): medians, ours vs QEMU-KVM.
for key, unit, label, scale in (("save_s", "s", "snapshot save (512M, 128M dirty)", 1),
                                ("restore_s", "s", "restore to first heartbeat", 1),
                                ("bytes", "MiB", "snapshot size on disk", 1 / 2**20)):
    o, no = med("ours", key, "snapshot")
    q, nq = med("qemu", key, "snapshot")
    if o is not None and q is not None:
        o, q = o * scale, q * scale
        table.append((label, o, q, o / q if q else None, unit, f"vs QEMU-KVM, median of {min(no, nq)}"))

# Live migration (bench/migrate.sh): ours vs QEMU defaults and vs QEMU best.
def mig(case, vmm):
    return [r for r in rows if r["bench"] == "migrate" and r["case"] == case and r["vmm"] == vmm]

def mmed(rs, key, conv_only=True):
    v = [r[key] for r in rs if r.get(key) is not None and (r["converged"] or not conv_only)]
    return statistics.median(v) if v else None

def survived(rs):
    rs = [r for r in rs if r["converged"] and r.get("client_ok") is not None]
    n = sum(1 for r in rs if r["client_ok"])
    return "-" if not rs else "yes" if n == len(rs) else "no" if n == 0 else f"{n}/{len(rs)}"

def conv(rs):
    n = sum(1 for r in rs if r["converged"])
    s = "yes" if n == len(rs) else "no" if n == 0 else f"{n}/{len(rs)}"
    # runs that did not simply fail to converge: failed/timeout/not_run, said
    why = collections.Counter(r.get("status") for r in rs if r.get("status") not in (None, "ok", "not_converged"))
    return s + (" (" + ", ".join(f"{c} {w}" for w, c in sorted(why.items())) + ")" if why else "")

for case in ("idle", "hot64"):
    ours_rs = mig(case, "ours")
    for peer, pname in (("qemu", "QEMU defaults"), ("qemu-best", "QEMU multifd+10G")):
        peer_rs = mig(case, peer)
        if not ours_rs or not peer_rs:
            continue
        table.append((f"migrate {case}: converged", conv(ours_rs), conv(peer_rs), None, "", f"vs {pname}, {len(ours_rs)}/{len(peer_rs)} runs"))
        # the TCP client in a third namespace: did its connection survive each move
        if any("client_ok" in r for r in ours_rs + peer_rs):
            table.append((f"migrate {case}: TCP connection kept", survived(ours_rs), survived(peer_rs), None, "",
                          f"vs {pname}, converged runs"))
        for key, unit, label, scale, conv_only in (("total_s", "s", "total time", 1, True),
                                                   ("downtime_ms", "ms", "downtime (reported)", 1, True),
                                                   ("client_gap_ms", "ms", "TCP client gap", 1, True),
                                                   ("gap_s", "s", "guest heartbeat gap", 1, True),
                                                   ("bytes", "MiB", "bytes on the wire", 1 / 2**20, True),
                                                   ("cpu_s", "s", "CPU time of both VMM processes", 1, True),
                                                   ("rounds", "", "rounds", 1, False)):
            o, q = mmed(ours_rs, key, conv_only), mmed(peer_rs, key, conv_only)
            if o is None and q is None:
                continue
            o = o * scale if o is not None else None
            q = q * scale if q is not None else None
            ratio = o / q if o is not None and q else None
            note = f"vs {pname}" + (", converged runs" if conv_only else ", all runs")
            table.append((f"migrate {case}: {label}", o, q, ratio, unit, note))

# virtio-net / virtio-blk throughput (bench/io.sh): MB/s, ours vs each QEMU configuration.
IO_PEERS = (("qemu", {"net": "QEMU defaults (userspace virtio-net, vhost=off)",
                      "blk": "QEMU cache=writeback (same semantics as ours)"}),
            ("qemu-vhost", {"net": "QEMU vhost-net",
                            "blk": "QEMU cache=writethrough"}))

def iomed(bench, vmm, field, val):
    v = [r["mbps"] for r in rows if r["bench"] == bench and r["vmm"] == vmm and r[field] == val]
    return (statistics.median(v), len(v)) if v else (None, 0)

for bench, field, vals in (("net", "dir", (("host_to_guest", "virtio-net host->guest"),
                                           ("guest_to_host", "virtio-net guest->host"))),
                           ("blk", "op", (("write", "virtio-blk seq write+fdatasync"),
                                          ("read", "virtio-blk seq read")))):
    for val, label in vals:
        o, no = iomed(bench, "ours", field, val)
        for peer, pnames in IO_PEERS:
            q, nq = iomed(bench, peer, field, val)
            if o is not None and q is not None:
                table.append((label, o, q, o / q if q else None, "MB/s",
                              f"vs {pnames[bench]}, median of {min(no, nq)}"))
            elif o is not None:
                table.append((label, o, None, None, "MB/s", f"vs {pnames[bench]}: no peer result"))

def cell(v, w=10):
    if v is None:
        return f"{'-':>{w}}"
    if isinstance(v, str):
        return f"{v:>{w}}"
    return f"{v:{w}.3f}"

print()
print(f"{'measure':38} {'ours':>10} {'peer':>10} {'ratio':>7}  unit  note")
for m, o, p, ratio, unit, note in table:
    print(f"{m:38} {cell(o)} {cell(p)} {cell(ratio, 7) if ratio is None else f'{ratio:7.2f}'}  {unit:5} {note}")
print(f"(where: {where}; lower ratio is better for times, sizes, downtime, gaps and RSS, higher for GB/s and MB/s)")

def guest_kernel():
    try:
        root = subprocess.run(["tests/lab/kernel.sh"], capture_output=True, text=True).stdout.strip()
        return sorted(os.listdir(os.path.join(root, "lib", "modules")))[0]
    except Exception:
        return "unknown"

def git_rev():
    rev = ver(["git", "rev-parse", "--short=12", "HEAD"])
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    return rev + ("-dirty" if dirty else "")

environment = {
    "where": where,
    "description": ("nested lab: QEMU TCG (-cpu qemu64,+svm,+npt, 2 emulated CPUs, 4 GiB) running Debian's kernel, "
                    "both VMMs on its kvm-amd; everything emulated, only ratios mean anything") if where != "direct"
                   else "directly on this machine's /dev/kvm",
    "guest": "Debian kernel + build/guests/linux initramfs, 512 MiB, 2 vCPUs (same for both VMMs)",
    "runs": int(os.environ.get("BENCH_RUNS", "3")),
    "phase_seconds": dict({k[len("BENCH_T_"):].lower(): float(v) for k, v in os.environ.items() if k.startswith("BENCH_T_")},
                          **{r["name"] + ".sh": r["s"] for r in rows if r["bench"] == "phase"}),
}
doc = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "where": where,
    "environment": environment,
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu": ver(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo"]),
                "mem": ver(["sh", "-c", "grep -m1 MemTotal /proc/meminfo"])},
    "versions": {"git": git_rev(), "qemu": ver(["qemu-system-x86_64", "--version"]), "gcc": ver(["gcc", "--version"]),
                 "iperf3": ver(["iperf3", "--version"]), "guest_kernel": guest_kernel()},
    "table": [dict(measure=m, ours=o, peer=p, ratio=r, unit=u, note=n) for m, o, p, r, u, n in table],
    "raw": rows,
}
with open(os.path.join(outdir, "latest.json"), "w") as f:
    json.dump(doc, f, indent=1)

# The same table as Markdown (what README.md's figures section shows).
def md(v):
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"

with open(os.path.join(outdir, "latest.md"), "w") as f:
    f.write(f"Measured {doc['date']} ({environment['description']}; git {doc['versions']['git']}; "
            f"{doc['versions']['qemu']}; median of {environment['runs']} runs unless noted)\n\n")
    f.write("| measure | ours | peer | ratio | unit | peer, note |\n|---|---|---|---|---|---|\n")
    for m, o, p, r, u, n in table:
        f.write(f"| {m} | {md(o)} | {md(p)} | {md(r) if r is not None else '-'} | {u} | {n} |\n")

# Plots with gnuplot (Debian's gnuplot-nox): absolute values where a plot has
# one unit (codec GB/s, I/O MB/s), and ours/peer ratios for every VM row
# (units differ; log scale, 1 = parity).
try:
    gp = subprocess.run(["gnuplot"], input="", capture_output=True)
    have_gnuplot = gp.returncode == 0
except FileNotFoundError:
    have_gnuplot = False

def plot(name, title, lines, using, extra=""):
    dat = os.path.join(outdir, name + ".dat")
    with open(dat, "w") as f:
        f.write("\n".join(lines) + "\n")
    script = f"""set terminal png size 1400,700
set output "{os.path.join(outdir, name + '.png')}"
set style data histogram
set style histogram clustered
set style fill solid border -1
set xtics rotate by 30 right font ",8"
set bmargin 14
set lmargin 14
set key top left
set grid ytics
set title "{title}"
{extra}
plot {using}
"""
    subprocess.run(["gnuplot"], input=script, text=True)
    os.remove(dat)
    return os.path.join(outdir, name + ".png")

def label(m, n):
    """Short x label: measure / peer, the peer without its explanation."""
    peer = n.split(" (")[0].split(",")[0].replace("vs ", "").replace("QEMU-KVM", "QEMU")
    peer = peer.replace("cache=", "").replace(": no peer result", "")
    return (m + " / " + peer).replace('"', "'")

made = []
if have_gnuplot:
    num = lambda t: all(isinstance(x, (int, float)) for x in t[1:3])
    sub = [t for t in table if t[0].startswith("codec") and num(t)]
    if sub:
        made.append(plot("codec", f"page codec vs memcpy, GB/s (native, this machine)",
                         [f'"{m}" {o} {p}' for m, o, p, r, u, n in sub],
                         '"DAT" using 2:xtic(1) title "ours", "" using 3 title "memcpy"'.replace("DAT", os.path.join(outdir, "codec.dat"))))
    sub = [t for t in table if t[4] == "MB/s" and num(t)]
    if sub:
        made.append(plot("io", f"virtio-net / virtio-blk, MB/s, ours vs QEMU-KVM ({where})",
                         [f'"{label(m, n)}" {o} {p}' for m, o, p, r, u, n in sub],
                         '"DAT" using 2:xtic(1) title "ours", "" using 3 title "QEMU-KVM"'.replace("DAT", os.path.join(outdir, "io.dat")),
                         "set logscale y"))
    sub = [t for t in table if not t[0].startswith("codec") and isinstance(t[3], (int, float)) and t[3] > 0]
    if sub:
        made.append(plot("ratios", f"ours / QEMU-KVM per measure ({where}); below 1 = ours smaller (times, sizes), above 1 = ours larger (MB/s)",
                         [f'"{label(m, n)} ({u})" {r}' for m, o, p, r, u, n in sub],
                         '"DAT" using 0:2:xtic(1) with boxes title "ours / peer", 1 with lines lw 2 title "parity"'.replace("DAT", os.path.join(outdir, "ratios.dat")),
                         "set logscale y\nset boxwidth 0.6\nset xrange [-0.7:*]"))
    for old in ("vm.png",):  # replaced by ratios.png
        if os.path.exists(os.path.join(outdir, old)):
            os.remove(os.path.join(outdir, old))
if made:
    print("plots: " + " ".join(made))
else:
    print("plots: none (gnuplot missing: make deps installs gnuplot-nox)")
print(f"results: {outdir}/latest.json {outdir}/latest.md")
