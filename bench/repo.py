#!/usr/bin/env python3
"""Repository benchmark: the time and peak memory of `mm-pkg repo add` of one new .deb and one
new .rpm into a signed repository that already holds N of each, next to reprepro (apt side)
plus createrepo_c --update and gpg (yum side) doing the same work, alternating, in rounds.

    bench/repo.py [--scales 10,100,300] [--runs 7] [--files 1|2500] [--work DIR]
                  [--mm-pkg PATH] [--baseline PATH] [--no-database]

--files N makes each package list N files (Mattermost's list about 2,500: 2500 is the
realistic setting; 1 measures the repository's own cost). The files are small: what is
measured is the metadata, not the packages' size. --baseline times another mm-pkg binary (an
earlier build) in the same rounds. --no-database adds a column for createrepo_c
--no-database (its default also writes sqlite databases).

Each side's repository of N packages per format is built once; each run adds another
package, at positions spread over the index, to a fresh copy of it (cp -a, so the page cache
is warm for every side alike), and the sides take turns within each run. Both sides sign
their metadata with an Ed25519 key (mm-pkg from the key file, reprepro and gpg from a GnuPG
home holding the same kind of key); mm-pkg also signs its copy of the new rpm. Each cell is
the median of the runs, with the fastest and slowest; RSS is the largest peak resident set
of any one process of that side over the runs. Needs dpkg-deb, rpmbuild, reprepro,
createrepo_c and gpg (apt-get install dpkg-dev rpm reprepro createrepo-c gnupg).
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


def template(out, files):
    """`files` small files in a tree shaped like a web client's: 50 per directory."""
    root = os.path.join(out, f"template-{files}")
    if os.path.exists(root):
        return root
    tmp = root + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for i in range(files):
        d = os.path.join(tmp, "client", "files", f"{i // 50:03d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"chunk-{i:05d}-{os.urandom(6).hex()}.js"), "wb") as f:
            f.write(os.urandom(32))
    os.rename(tmp, root)
    return root


def make_debs(out, names, files):
    tree = template(out, files)
    for name in names:
        root = os.path.join(out, "root-" + name)
        os.makedirs(os.path.join(root, "DEBIAN"))
        os.makedirs(os.path.join(root, "opt"))
        run(["cp", "-al", tree, os.path.join(root, "opt", name)])
        with open(os.path.join(root, "DEBIAN/control"), "w") as f:
            f.write(f"Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\nSection: misc\nPriority: optional\n"
                    f"Maintainer: Bench <bench@example.org>\nDescription: bench package {name}\n"
                    f" A package of {files} files.\n")
        run(["dpkg-deb", "-Zgzip", "-z1", "--root-owner-group", "--build", root,
             os.path.join(out, f"{name}_1.0-1_amd64.deb")])
        shutil.rmtree(root)


def make_rpms(out, names, files):
    """One rpmbuild run writing one subpackage per name, each listing `files` files."""
    tree = template(out, files)
    top = os.path.join(out, "rpmbuild")
    spec = os.path.join(out, "bench.spec")
    with open(spec, "w") as f:
        f.write("Name: bench-base\nVersion: 1.0\nRelease: 1\nSummary: bench\nLicense: MIT\n"
                "BuildArch: x86_64\nAutoReqProv: no\n%description\nbench\n")
        for name in names:
            f.write(f"%package -n {name}\nSummary: bench package {name}\nAutoReqProv: no\n"
                    f"%description -n {name}\nbench package {name}\n"
                    f"%files -n {name}\n/opt/{name}\n")
        f.write("%install\nmkdir -p %{buildroot}/opt\n")
        for name in names:
            f.write(f"cp -al {tree} %{{buildroot}}/opt/{name}\n")
    run(["rpmbuild", "-bb", "--define", f"_topdir {top}", "--define", "_binary_payload w1.gzdio",
         "--define", "__spec_install_post %{nil}", "--define", "debug_package %{nil}",
         "--define", "_build_id_links none", spec])
    rpms = os.path.join(top, "RPMS/x86_64")
    for f in os.listdir(rpms):
        shutil.move(os.path.join(rpms, f), os.path.join(out, f))
    shutil.rmtree(top)


def timed(cmds, env=None):
    """Seconds the commands take one after the other, and the largest peak RSS (MiB)."""
    start = time.perf_counter()
    rss = 0
    for c in cmds:
        p = subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        if status != 0:
            raise SystemExit(f"{c} failed ({status})")
        rss = max(rss, usage.ru_maxrss / 1024)
    return time.perf_counter() - start, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="10,100,300")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--files", type=int, default=1)
    ap.add_argument("--work")
    ap.add_argument("--mm-pkg", default="target/release/mm-pkg")
    ap.add_argument("--baseline", help="another mm-pkg binary to time alongside")
    ap.add_argument("--no-database", action="store_true",
                    help="also time createrepo_c --update --no-database")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="mm-pkg-repo-bench-")
    os.makedirs(work, exist_ok=True)
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
    key = os.path.join(keys, "signing-key.secret.asc")
    base_bin = os.path.abspath(a.baseline) if a.baseline else None
    sides = ["mm-pkg repo add", "reprepro + createrepo_c --update + gpg"]
    if a.no_database:
        sides.append("... with createrepo_c --no-database")
    if base_bin:
        sides.append("baseline mm-pkg")
    print(f"{a.files} file(s) per package; median (fastest-slowest) of {a.runs} runs; peak RSS")
    print(f"{'held':>6} " + " ".join(f"{s:>42}" for s in sides), flush=True)
    for scale in [int(s) for s in a.scales.split(",")]:
        # `runs` more packages than the repository holds: run k adds the k-th of them, at
        # positions spread over the index.
        total = scale + a.runs
        pkgs = os.path.join(work, f"pkgs-{a.files}-{total}")
        names = [f"bench{i:05d}" for i in range(total)]
        if not os.path.exists(os.path.join(pkgs, "done")):
            shutil.rmtree(pkgs, ignore_errors=True)
            os.makedirs(pkgs)
            make_debs(pkgs, names, a.files)
            make_rpms(pkgs, names, a.files)
            open(os.path.join(pkgs, "done"), "w").close()
        debs = sorted(os.path.join(pkgs, f) for f in os.listdir(pkgs) if f.endswith(".deb"))
        rpms = sorted(os.path.join(pkgs, f) for f in os.listdir(pkgs) if f.endswith(".rpm"))
        picks = [(2 * k + 1) * total // (2 * a.runs) for k in range(a.runs)]
        held = [i for i in range(total) if i not in picks]
        old = [debs[i] for i in held] + [rpms[i] for i in held]
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
        results = {s: ([], []) for s in sides}

        def reference(new, extra):
            ref = os.path.join(work, "ref")
            shutil.rmtree(ref, ignore_errors=True)
            run(["cp", "-a", base_ref, ref])
            repomd = os.path.join(ref, "yum/repodata/repomd.xml")
            return timed([
                ["reprepro", "-b", os.path.join(ref, "apt"), "includedeb", "stable", new[0]],
                ["cp", new[1], os.path.join(ref, "yum/Packages")],
                ["createrepo_c", "--update", *extra, os.path.join(ref, "yum")],
                ["gpg", "--homedir", gnupg, "--batch", "--yes", "--armor", "--detach-sign",
                 "--output", repomd + ".asc", repomd],
            ], env=genv)

        def ours(binary, base):
            repo = os.path.join(work, "mm")
            shutil.rmtree(repo, ignore_errors=True)
            run(["cp", "-a", base, repo])
            return timed([[binary, "repo", "add", repo, *new, "--sign-key", key]], env=env)

        for k, pick in enumerate(picks):
            new = [debs[pick], rpms[pick]]
            jobs = [(sides[0], lambda: ours(mm, base_mm)),
                    (sides[1], lambda: reference(new, []))]
            if a.no_database:
                jobs.append((sides[2], lambda: reference(new, ["--no-database"])))
            if base_bin:
                jobs.append((sides[-1], lambda: ours(base_bin, base_old)))
            # The sides take turns: a different one goes first in each run.
            jobs = jobs[k % len(jobs):] + jobs[:k % len(jobs)]
            for side, job in jobs:
                t, rss = job()
                results[side][0].append(t)
                results[side][1].append(rss)

        def cell(side):
            t, rss = results[side]
            return (f"{statistics.median(t):.3f}s ({min(t):.3f}-{max(t):.3f}) "
                    f"{max(rss):.0f} MiB")
        print(f"{scale:>6} " + " ".join(f"{cell(s):>42}" for s in sides), flush=True)


if __name__ == "__main__":
    main()
