#!/usr/bin/env python3
"""Repository benchmark: the time of `mm-pkg repo add` of one new .deb and one new .rpm into a
signed repository that already holds N of each, next to reprepro (apt side) plus
createrepo_c --update and gpg (yum side) doing the same work, side by side, alternating.

    bench/repo.py [--scales 10,100,1000] [--runs 5] [--work DIR] [--mm-pkg PATH]
                  [--baseline PATH]

--baseline times another mm-pkg binary (an earlier build) the same way, in the same rounds.

The packages are small synthetic ones (one 4 KiB file each): the cost measured is the
repository's, not the packages'. Each run adds another package, at positions spread over the
index, to a fresh copy of the same repository. Both sides sign their metadata with an Ed25519 key (mm-pkg
from the key file, reprepro and gpg from a GnuPG home holding the same kind of key); mm-pkg
also signs its copy of the new rpm. Needs dpkg-deb, rpmbuild, reprepro, createrepo_c and gpg
(apt-get install dpkg-dev rpm reprepro createrepo-c gnupg).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def make_debs(out, names):
    os.makedirs(out, exist_ok=True)
    for name in names:
        root = os.path.join(out, "root-" + name)
        os.makedirs(os.path.join(root, "DEBIAN"))
        os.makedirs(os.path.join(root, "usr/share", name))
        with open(os.path.join(root, "DEBIAN/control"), "w") as f:
            f.write(f"Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\nSection: misc\nPriority: optional\n"
                    f"Maintainer: Bench <bench@example.org>\nDescription: bench package {name}\n")
        with open(os.path.join(root, "usr/share", name, "data"), "wb") as f:
            f.write(os.urandom(4096))
        run(["dpkg-deb", "-Znone", "--root-owner-group", "--build", root,
             os.path.join(out, f"{name}_1.0-1_amd64.deb")])
        shutil.rmtree(root)


def make_rpms(out, names):
    """One rpmbuild run writing one subpackage per name (fast even for 1,000)."""
    top = os.path.join(out, "rpmbuild")
    spec = os.path.join(out, "bench.spec")
    with open(spec, "w") as f:
        f.write("Name: bench-base\nVersion: 1.0\nRelease: 1\nSummary: bench\nLicense: MIT\n"
                "BuildArch: x86_64\n%description\nbench\n")
        for name in names:
            f.write(f"%package -n {name}\nSummary: bench package {name}\n"
                    f"%description -n {name}\nbench package {name}\n"
                    f"%files -n {name}\n/usr/share/{name}/data\n")
        f.write("%install\n")
        for name in names:
            f.write(f"mkdir -p %{{buildroot}}/usr/share/{name} && "
                    f"head -c 4096 /dev/urandom > %{{buildroot}}/usr/share/{name}/data\n")
    run(["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", "_binary_payload w0.ufdio",
         "--define", "__spec_install_post %{nil}", "--define", "debug_package %{nil}", spec])
    rpms = os.path.join(top, "RPMS/x86_64")
    for f in os.listdir(rpms):
        shutil.move(os.path.join(rpms, f), os.path.join(out, f))
    shutil.rmtree(top)


def timed(cmds, env=None):
    start = time.perf_counter()
    for c in cmds:
        run(c, env=env)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="10,100,1000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work")
    ap.add_argument("--mm-pkg", default="target/release/mm-pkg")
    ap.add_argument("--baseline", help="another mm-pkg binary to time alongside")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="mm-pkg-repo-bench-")
    mm = os.path.abspath(a.mm_pkg)
    env = dict(os.environ, SOURCE_DATE_EPOCH="1764000000")
    keys = os.path.join(work, "keys")
    if not os.path.exists(keys):
        run([mm, "key", "generate", "--name", "Bench <bench@example.org>", "--output", keys], env=env)
    gnupg = os.path.join(work, "gnupg")
    if not os.path.exists(gnupg):
        os.makedirs(gnupg, mode=0o700)
        run(["gpg", "--homedir", gnupg, "--batch", "--passphrase", "", "--quick-gen-key",
             "Bench <bench@example.org>", "ed25519", "sign", "never"])
    fpr = subprocess.run(["gpg", "--homedir", gnupg, "--with-colons", "--list-secret-keys"],
                         check=True, capture_output=True, text=True).stdout
    fpr = next(l.split(":")[9] for l in fpr.splitlines() if l.startswith("fpr:"))
    genv = dict(env, GNUPGHOME=gnupg)
    base_bin = os.path.abspath(a.baseline) if a.baseline else None
    extra = f" {'baseline mm-pkg':>24}" if base_bin else ""
    print(f"{'held':>6} {'mm-pkg repo add':>24} {'reprepro + createrepo_c --update + gpg':>40}{extra}")
    print(f"{'':>6} {'median (fastest)':>24} {'median (fastest)':>40}"
          + (f" {'median (fastest)':>24}" if base_bin else ""))
    for scale in [int(s) for s in a.scales.split(",")]:
        # `runs` more packages than the repository holds: run k adds the k-th of them, at
        # positions spread over the index (an add costs what the segment it falls in holds).
        total = scale + a.runs
        pkgs = os.path.join(work, f"pkgs-{total}")
        names = [f"bench{i:05d}" for i in range(total)]
        if not os.path.exists(pkgs):
            make_debs(pkgs, names)
            make_rpms(pkgs, names)
        debs = sorted(os.path.join(pkgs, f) for f in os.listdir(pkgs) if f.endswith(".deb"))
        rpms = sorted(os.path.join(pkgs, f) for f in os.listdir(pkgs) if f.endswith(".rpm"))
        picks = [(2 * k + 1) * total // (2 * a.runs) for k in range(a.runs)]
        held = [i for i in range(total) if i not in picks]
        old = [debs[i] for i in held] + [rpms[i] for i in held]
        # Each side's repository of `scale` packages per format is built once; every run
        # adds the new packages to a fresh copy of it (cp -a, so the page cache is warm for
        # both sides alike).
        key = os.path.join(keys, "signing-key.secret.asc")
        base_mm = os.path.join(work, f"base-mm-{scale}")
        shutil.rmtree(base_mm, ignore_errors=True)
        run([mm, "repo", "add", base_mm, *old, "--sign-key", key], env=env)
        if base_bin:
            base_old = os.path.join(work, f"base-baseline-{scale}")
            shutil.rmtree(base_old, ignore_errors=True)
            run([base_bin, "repo", "add", base_old, *old, "--sign-key", key], env=env)
        base_ref = os.path.join(work, f"base-ref-{scale}")
        shutil.rmtree(base_ref, ignore_errors=True)
        os.makedirs(os.path.join(base_ref, "apt/conf"))
        with open(os.path.join(base_ref, "apt/conf/distributions"), "w") as f:
            f.write(f"Codename: stable\nSuite: stable\nArchitectures: amd64\n"
                    f"Components: main\nSignWith: {fpr}\n")
        os.makedirs(os.path.join(base_ref, "yum/Packages"))
        run(["reprepro", "-b", os.path.join(base_ref, "apt"), "includedeb", "stable",
             *[debs[i] for i in held]], env=genv)
        for r in [rpms[i] for i in held]:
            shutil.copy(r, os.path.join(base_ref, "yum/Packages"))
        run(["createrepo_c", os.path.join(base_ref, "yum")])
        repomd = os.path.join(base_ref, "yum/repodata/repomd.xml")
        run(["gpg", "--homedir", gnupg, "--batch", "--yes", "--armor", "--detach-sign",
             "--output", repomd + ".asc", repomd])
        ours, theirs, before = [], [], []
        for pick in picks:
            new = [debs[pick], rpms[pick]]
            if base_bin:
                repo = os.path.join(work, "baseline")
                shutil.rmtree(repo, ignore_errors=True)
                run(["cp", "-a", base_old, repo])
                before.append(timed([[base_bin, "repo", "add", repo, *new, "--sign-key", key]],
                                    env=env))
            repo = os.path.join(work, "mm")
            shutil.rmtree(repo, ignore_errors=True)
            run(["cp", "-a", base_mm, repo])
            ours.append(timed([[mm, "repo", "add", repo, *new, "--sign-key", key]], env=env))
            ref = os.path.join(work, "ref")
            shutil.rmtree(ref, ignore_errors=True)
            run(["cp", "-a", base_ref, ref])
            repomd = os.path.join(ref, "yum/repodata/repomd.xml")
            theirs.append(timed([
                ["reprepro", "-b", os.path.join(ref, "apt"), "includedeb", "stable", new[0]],
                ["cp", new[1], os.path.join(ref, "yum/Packages")],
                ["createrepo_c", "--update", os.path.join(ref, "yum")],
                ["gpg", "--homedir", gnupg, "--batch", "--yes", "--armor", "--detach-sign",
                 "--output", repomd + ".asc", repomd],
            ], env=genv))
        cell = lambda t: f"{statistics.median(t):.3f}s ({min(t):.3f}s)"
        extra = f" {cell(before):>24}" if base_bin else ""
        print(f"{scale:>6} {cell(ours):>24} {cell(theirs):>40}{extra}", flush=True)


if __name__ == "__main__":
    main()
