#!/usr/bin/env python3
"""Turn bench JSON lines into a table with ratios, latest.json and PNG plots.
usage: report.py RAW_JSON_LINES WHERE OUTDIR"""
import json, os, platform, statistics, subprocess, sys, time

raw, where, outdir = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(raw) if l.startswith("{")]

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

for key, unit, label in (("boot_s", "s", "boot to GUEST UP"), ("rss_kib", "MiB", "RSS after boot")):
    o, no = med("ours", key, "boot")
    q, nq = med("qemu", key, "boot")
    if o is not None and q is not None:
        if unit == "MiB":
            o, q = o / 1024, q / 1024
        table.append((label, o, q, o / q, unit, f"vs QEMU-KVM, median of {min(no, nq)}"))

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

def conv(rs):
    n = sum(1 for r in rs if r["converged"])
    return "yes" if n == len(rs) else "no" if n == 0 else f"{n}/{len(rs)}"

for case in ("idle", "hot64"):
    ours_rs = mig(case, "ours")
    for peer, pname in (("qemu", "QEMU defaults"), ("qemu-best", "QEMU multifd+10G")):
        peer_rs = mig(case, peer)
        if not ours_rs or not peer_rs:
            continue
        table.append((f"migrate {case}: converged", conv(ours_rs), conv(peer_rs), None, "", f"vs {pname}, {len(ours_rs)}/{len(peer_rs)} runs"))
        for key, unit, label, scale, conv_only in (("total_s", "s", "total time", 1, True),
                                                   ("downtime_ms", "ms", "downtime (reported)", 1, True),
                                                   ("gap_s", "s", "guest heartbeat gap", 1, True),
                                                   ("bytes", "MiB", "bytes on the wire", 1 / 2**20, True),
                                                   ("rounds", "", "rounds", 1, False)):
            o, q = mmed(ours_rs, key, conv_only), mmed(peer_rs, key, conv_only)
            if o is None and q is None:
                continue
            o = o * scale if o is not None else None
            q = q * scale if q is not None else None
            ratio = o / q if o is not None and q else None
            note = f"vs {pname}" + (", converged runs" if conv_only else ", all runs")
            table.append((f"migrate {case}: {label}", o, q, ratio, unit, note))

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
print(f"(where: {where}; lower ratio is better for times, sizes, downtime, gaps and RSS, higher for GB/s)")

doc = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "where": where,
    "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "cpu": ver(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo"])},
    "versions": {"qemu": ver(["qemu-system-x86_64", "--version"]), "gcc": ver(["gcc", "--version"])},
    "table": [dict(measure=m, ours=o, peer=p, ratio=r, unit=u, note=n) for m, o, p, r, u, n in table],
    "raw": rows,
}
with open(os.path.join(outdir, "latest.json"), "w") as f:
    json.dump(doc, f, indent=1)

# Plots with gnuplot when present (Debian's gnuplot-nox).
try:
    gp = subprocess.run(["gnuplot"], input="", capture_output=True)
    have_gnuplot = gp.returncode == 0
except FileNotFoundError:
    have_gnuplot = False
if have_gnuplot:
    for name, sel in (("codec", lambda m: m.startswith("codec")), ("vm", lambda m: not m.startswith("codec"))):
        sub = [t for t in table if sel(t[0]) and all(isinstance(x, (int, float)) for x in t[1:3])]
        if not sub:
            continue
        dat = os.path.join(outdir, name + ".dat")
        with open(dat, "w") as f:
            for m, o, p, r, u, n in sub:
                f.write(f'"{m} ({u})" {o} {p}\n')
        script = f'''set terminal png size 1000,500
set output "{os.path.join(outdir, name + '.png')}"
set style data histogram
set style histogram clustered
set style fill solid border -1
set xtics rotate by -30
set title "{name}: ours vs peer ({where})"
plot "{dat}" using 2:xtic(1) title "ours", "" using 3 title "peer"
'''
        subprocess.run(["gnuplot"], input=script, text=True)
        os.remove(dat)
    print(f"plots: {outdir}/codec.png {outdir}/vm.png")
print(f"results: {outdir}/latest.json")
