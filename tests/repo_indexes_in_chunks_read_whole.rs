//! Indexes large enough to be compressed in several chunks (one xz stream of several blocks,
//! one gzip member of several deflate runs) read back whole with apt's own decompression,
//! xz, gzip and dnf; adding a package recompresses only the chunks it changes, a planted or
//! damaged cache changes no byte of what is published, and a repository grown package by
//! package has the indexes of one made at once.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::repo::{dnf, dnf_client, repo_add, tiny_deb};
use common::static_files::StaticServer;
use common::{have, run};

const APT_HELPER: &str = "/usr/lib/apt/apt-helper";

/// `n` small .debs and .rpms named `bench000`... with a long description each, so that their
/// index entries fill several chunks.
fn small_packages(dir: &Path, n: usize) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let words: String = (0..300).map(|i| format!(" word{i}")).collect();
    let debs = (0..n)
        .map(|i| tiny_deb(dir, &format!("bench{i:03}"), "1.0-1", &words))
        .collect();
    let mut spec = "Name: bench-base\nVersion: 1.0\nRelease: 1\nSummary: bench\nLicense: MIT\n\
                    BuildArch: x86_64\n%description\nbench\n"
        .to_string();
    let mut install = "%install\n".to_string();
    for i in 0..n {
        let name = format!("bench{i:03}");
        spec += &format!(
            "%package -n {name}\nSummary: bench package {name}\n%description -n {name}\n\
             bench package {name}{words}\n%files -n {name}\n/usr/share/{name}/data\n"
        );
        install += &format!(
            "mkdir -p %{{buildroot}}/usr/share/{name} && echo {name} > \
             %{{buildroot}}/usr/share/{name}/data\n"
        );
    }
    fs::write(dir.join("bench.spec"), spec + &install).unwrap();
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", dir.join("rpmbuild").display()))
        .args(["--define", "__spec_install_post %{nil}"])
        .args(["--define", "debug_package %{nil}"])
        .arg(dir.join("bench.spec")));
    let built = dir.join("rpmbuild/RPMS/x86_64");
    let mut rpms: Vec<PathBuf> = fs::read_dir(&built)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    rpms.sort();
    (debs, rpms)
}

/// (streams, blocks) of an .xz file, as `xz --list` counts them.
fn xz_streams_and_blocks(file: &Path) -> (u64, u64) {
    let list = run(Command::new("xz").args(["--robot", "--list"]).arg(file));
    let totals: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with("totals"))
        .unwrap()
        .split('\t')
        .collect();
    (totals[1].parse().unwrap(), totals[2].parse().unwrap())
}

/// The xz blocks of `file`, each as its compressed size, uncompressed size and check value
/// (from `xz --list -vv`; not its offset, which moves when an earlier block changes).
fn xz_blocks(file: &Path) -> Vec<String> {
    let list = run(Command::new("xz")
        .args(["--robot", "--list", "-vv"])
        .arg(file));
    list.lines()
        .filter(|l| l.starts_with("block"))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            format!("{} {} {}", f[6], f[7], f[10])
        })
        .collect()
}

#[test]
fn indexes_in_several_chunks_read_back_whole_with_apt_xz_gzip_and_dnf() {
    for tool in [
        "dpkg-deb", "rpmbuild", "xz", "gzip", "dnf", "rpm", APT_HELPER,
    ] {
        if !have(tool) {
            return;
        }
    }
    let work = tempfile::tempdir().unwrap();
    let (debs, rpms) = small_packages(work.path(), 151);
    let web = tempfile::tempdir().unwrap();
    let server = StaticServer::start(web.path());
    let files: Vec<PathBuf> = debs[..149].iter().chain(&rpms[..149]).cloned().collect();
    repo_add(web.path(), &files, &["--base-url", &server.base]);

    let bin = web.path().join("apt/dists/stable/main/binary-amd64");
    let plain = fs::read(bin.join("Packages")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&plain).matches("Package: ").count(),
        149
    );
    let (streams, blocks) = xz_streams_and_blocks(&bin.join("Packages.xz"));
    assert_eq!(streams, 1, "Packages.xz must be one xz stream");
    assert!(
        blocks > 2,
        "Packages.xz has {blocks} blocks: too few to test chunks"
    );
    // apt decompresses the indexes with its own code (FileFd), as `apt-get update` does.
    for index in ["Packages.xz", "Packages.gz"] {
        let out = common::output(
            Command::new(APT_HELPER)
                .arg("cat-file")
                .arg(bin.join(index)),
        );
        assert!(out.status.success(), "apt-helper cannot read {index}");
        assert!(
            out.stdout == plain,
            "{index} does not decompress to Packages"
        );
    }
    run(Command::new("gzip").arg("-t").arg(bin.join("Packages.gz")));
    run(Command::new("xz").arg("-t").arg(bin.join("Packages.xz")));

    // dnf reads every package from the chunked primary, filelists and other.
    let root = dnf_client(web.path());
    let root = root.path();
    let (ok, text) = dnf(
        root,
        &["repoquery", "--queryformat", "%{name}\\n", "bench*"],
    );
    assert!(ok, "dnf repoquery failed:\n{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("bench")).count(),
        149,
        "{text}"
    );
    let (ok, text) = dnf(root, &["repoquery", "--list", "bench077"]);
    assert!(ok && text.contains("/usr/share/bench077/data"), "{text}");

    // One more package changes one or two chunks of each index: every other xz block stays
    // as it was, and only those chunks are compressed (the cache holds the others).
    let cache = web.path().join(".mm-pkg/cache");
    let cached_before = listing(&cache);
    let before = xz_blocks(&bin.join("Packages.xz"));
    repo_add(web.path(), &[debs[149].clone(), rpms[149].clone()], &[]);
    let made = listing(&cache)
        .iter()
        .filter(|s| !cached_before.contains(s))
        .count();
    // apt: Packages.gz and .xz, one or two chunks each; yum: the three headers (their count
    // changed) and one or two chunks of each text.
    assert!(
        made <= 13 && cached_before.len() > 3 * made,
        "one add compressed {made} chunks of {}",
        cached_before.len()
    );
    run(common::mm_pkg()
        .args(["repo", "verify", "--hashes-only"])
        .arg(web.path()));
    let after = xz_blocks(&bin.join("Packages.xz"));
    let kept = before.iter().filter(|b| after.contains(b)).count();
    assert!(
        kept + 2 >= before.len() && after.len() <= before.len() + 1,
        "adding one package changed {} of {} blocks",
        before.len() - kept,
        before.len()
    );

    // Whoever writes the cache cannot change an index: every cached file replaced by a
    // well-formed gzip or xz file of another text (or damaged) is recompressed, not used.
    let evil = b"Package: evil\nVersion: 9\nArchitecture: amd64\nFilename: pool/evil.deb\n\n";
    let evil_gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut e, evil).unwrap();
        e.finish().unwrap()
    };
    for name in listing(&cache) {
        let path = cache.join(&name);
        if name.ends_with(".gz") {
            fs::write(&path, &evil_gz).unwrap();
        } else {
            let mut bytes = fs::read(&path).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x20;
            fs::write(&path, bytes).unwrap();
        }
    }
    repo_add(web.path(), &[debs[150].clone(), rpms[150].clone()], &[]);
    run(common::mm_pkg()
        .args(["repo", "verify", "--hashes-only"])
        .arg(web.path()));
    let out = common::output(
        Command::new(APT_HELPER)
            .arg("cat-file")
            .arg(bin.join("Packages.xz")),
    );
    assert!(out.stdout == fs::read(bin.join("Packages")).unwrap());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("evil"));
    let (ok, text) = dnf(
        root,
        &[
            "repoquery",
            "--refresh",
            "--queryformat",
            "%{name}\\n",
            "bench*",
        ],
    );
    assert!(ok, "dnf repoquery failed:\n{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("bench")).count(),
        151,
        "{text}"
    );

    // Grown package by package or made at once, the indexes are the same bytes.
    let once = tempfile::tempdir().unwrap();
    let all: Vec<PathBuf> = debs.iter().chain(&rpms).cloned().collect();
    repo_add(once.path(), &all, &[]);
    let once_bin = once.path().join("apt/dists/stable/main/binary-amd64");
    for index in ["Packages", "Packages.gz", "Packages.xz"] {
        assert!(
            fs::read(bin.join(index)).unwrap() == fs::read(once_bin.join(index)).unwrap(),
            "{index} differs from one made at once"
        );
    }
    let repodata = |repo: &Path| -> Vec<String> {
        listing(&repo.join("yum/repodata"))
            .into_iter()
            .filter(|n| n.ends_with(".xml.gz"))
            .collect()
    };
    let grown = repodata(web.path());
    for name in repodata(once.path()) {
        assert!(
            grown.contains(&name),
            "{name} differs from one made at once"
        );
    }
}

/// The names of the files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
