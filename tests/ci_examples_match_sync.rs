//! The CI examples: both parse as YAML and wire plan -> build matrix -> publish; and the
//! sequence they run (plan, each build from the plan's own arguments in its own output
//! directory with its own cache, one `repo add`, `notify`) gives the repository one `sync`
//! gives, byte for byte.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::fixture::Spec;
use common::signing::release_key;
use common::upstream::{FOLLOW_TWO_SERIES, Upstream, json, text, tree};
use common::{have, output, run};

fn yaml(name: &str) -> serde_norway::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let text = fs::read_to_string(&path).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name} is not YAML: {e}"))
}

/// Every `run:` / `script:` line of a job, joined.
fn scripts(job: &serde_norway::Value) -> String {
    let mut out = String::new();
    if let Some(steps) = job["steps"].as_sequence() {
        for step in steps {
            if let Some(run) = step["run"].as_str() {
                out.push_str(run);
                out.push('\n');
            }
        }
    }
    if let Some(lines) = job["script"].as_sequence() {
        for line in lines {
            out.push_str(line.as_str().unwrap_or(""));
            out.push('\n');
        }
    }
    out
}

#[test]
fn github_actions_example_plans_fans_out_and_publishes_once() {
    let wf = yaml("github-actions.yml");
    let jobs = &wf["jobs"];
    let plan = scripts(&jobs["plan"]);
    assert!(
        plan.contains("mm-pkg sync --repo repo $MM_PKG_FOLLOW --plan --json"),
        "{plan}"
    );
    let build = &jobs["build"];
    assert_eq!(
        build["strategy"]["matrix"].as_str(),
        Some("${{ fromJSON(needs.plan.outputs.matrix) }}")
    );
    assert_eq!(build["strategy"]["fail-fast"].as_bool(), Some(false));
    assert!(scripts(build).contains("mm-pkg \"${args[@]}\" --output dist"));
    let upload = build["steps"].as_sequence().unwrap().iter().find(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/upload-artifact"))
    });
    assert!(upload.is_some(), "the build job uploads its packages");
    let publish = scripts(&jobs["publish"]);
    let order = ["mm-pkg repo add", "rclone copy repo", "mm-pkg notify"];
    let at: Vec<usize> = order.iter().map(|s| publish.find(s).expect(s)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{publish}");
    // The signing key and the webhook are secrets of the publish job only.
    let text = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/github-actions.yml"),
    )
    .unwrap();
    assert_eq!(text.matches("secrets.MM_PKG_SIGN_KEY }}").count(), 1);
    assert_eq!(text.matches("secrets.MM_PKG_WEBHOOK_URL }}").count(), 1);
}

#[test]
fn gitlab_example_generates_a_child_pipeline_that_parses() {
    let ci = yaml("gitlab-ci.yml");
    let plan = scripts(&ci["plan"]);
    assert!(plan.contains("mm-pkg sync --repo repo $MM_PKG_FOLLOW --plan --json > plan.json"));
    assert_eq!(
        ci["build"]["trigger"]["include"][0]["artifact"].as_str(),
        Some("child-pipeline.yml")
    );
    if !have("jq") {
        return;
    }
    // Run the plan job's jq program on a real plan and parse what it writes.
    let program = plan
        .split_once("jq --arg install \"$MM_PKG_INSTALL\" --arg parent \"$CI_PIPELINE_ID\" '")
        .and_then(|(_, rest)| rest.rsplit_once("' plan.json > child-pipeline.yml"))
        .map(|(p, _)| p.to_string())
        .expect("the plan job's jq program");
    let up = Upstream::new();
    up.publish(&Spec::new("9.11.90"), Some(release_key()));
    let out = up.sync(&up.path("repo"), &["--spec", "9.11", "--plan", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan_file = up.path("plan.json");
    fs::write(&plan_file, &out.stdout).unwrap();
    let child = run(std::process::Command::new("jq")
        .args(["--arg", "install", "true", "--arg", "parent", "7", &program])
        .arg(&plan_file));
    let child: serde_norway::Value = serde_norway::from_str(&child).unwrap();
    let build = &child["build 9.11.90-enterprise-amd64"];
    assert_eq!(build["stage"].as_str(), Some("build"));
    let args = build["variables"]["MM_PKG_ARGS"].as_str().unwrap();
    assert!(args.starts_with("build 9.11.90 --edition enterprise --arch amd64 --format deb,rpm"));
    let publish = scripts(&child["publish"]);
    assert!(publish.contains("mm-pkg repo add repo") && publish.contains("mm-pkg notify"));
    assert_eq!(child["publish"]["needs"].as_sequence().unwrap().len(), 2);
}

/// The plan's builds, each run as its own CI job would: its own output directory and cache.
fn run_planned_builds(up: &Upstream, plan: &serde_json::Value, prefix: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (i, entry) in plan["include"].as_array().unwrap().iter().enumerate() {
        let argv: Vec<String> = entry["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let job = up.path(&format!("{prefix}job-{i}"));
        let out = output(
            up.cmd()
                .args(&argv)
                .arg("--output")
                .arg(job.join("dist"))
                .env("XDG_CACHE_HOME", job.join("cache")),
        );
        assert!(out.status.success(), "mm-pkg {argv:?}:\n{}", text(&out));
        for e in fs::read_dir(job.join("dist")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "deb" || x == "rpm") {
                files.push(p);
            }
        }
    }
    files
}

#[test]
fn plan_builds_and_one_repo_add_give_the_repository_one_sync_gives() {
    let up = Upstream::new();
    up.publish_both(&["9.11.90", "12.0.1"]);
    // Packaging flags a pipeline sets: every planned build must apply them as sync does.
    let packaging = [
        "--vendor",
        "Example Packagers",
        "--depends",
        "postgresql-client",
        "--distribution",
        "bookworm",
        "--revision",
        "1~deb12u1",
    ];
    let follow = [&FOLLOW_TWO_SERIES[..], &packaging[..]].concat();
    let ci = up.path("ci-repo");

    // plan
    let out = up.sync(&ci, &[&follow[..], &["--plan", "--json"]].concat());
    assert!(out.status.success(), "{}", text(&out));
    let plan = json(&out);
    assert_eq!(plan["include"].as_array().unwrap().len(), 4, "{plan:#}");
    let plan_file = up.path("plan.json");
    fs::write(&plan_file, &out.stdout).unwrap();
    // build x 4
    let files = run_planned_builds(&up, &plan, "");
    assert_eq!(files.len(), 8);
    let deb = files
        .iter()
        .find(|f| f.extension().is_some_and(|x| x == "deb"))
        .unwrap();
    let control = run(std::process::Command::new("dpkg-deb")
        .arg("--field")
        .arg(deb)
        .args(["Depends", "Version"]));
    assert!(
        control.contains("postgresql-client") && control.contains("-1~deb12u1"),
        "{control}"
    );
    // publish: one repo add, then notify
    run(up
        .cmd()
        .args(["repo", "add"])
        .arg(&ci)
        .args(&files)
        .arg("--sign-key")
        .arg(up.sign_key()));
    let out = output(
        up.cmd()
            .args(["notify", "--repo"])
            .arg(&ci)
            .arg("--plan")
            .arg(&plan_file)
            .arg("--json"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let settled = json(&out);
    assert_eq!(settled["built"].as_array().unwrap().len(), 4);

    // one sync
    let one = up.path("sync-repo");
    let out = up.sync(&one, &follow);
    assert!(out.status.success(), "{}", text(&out));

    let (a, b) = (tree(&ci), tree(&one));
    let names =
        |t: &std::collections::BTreeMap<String, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    for (name, bytes) in &a {
        assert!(
            bytes == &b[name],
            "{name} differs between the CI sequence and sync"
        );
    }

    // A build job that produced nothing: notify names it and exits 1.
    let partial = up.path("partial-repo");
    let keep: Vec<&PathBuf> = files
        .iter()
        .filter(|f| !f.to_string_lossy().contains("12.0.1"))
        .collect();
    run(up
        .cmd()
        .args(["repo", "add"])
        .arg(&partial)
        .args(keep)
        .arg("--sign-key")
        .arg(up.sign_key()));
    let out = output(
        up.cmd()
            .args(["notify", "--repo"])
            .arg(&partial)
            .arg("--plan")
            .arg(&plan_file)
            .arg("--json"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let failed = json(&out)["failed"].clone();
    assert_eq!(failed.as_array().unwrap().len(), 2, "{failed:#}");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("build job failed")
    );
}

/// The upstream flags every command of the test pipeline needs (the fake mirror, index,
/// cache and keyring), as one shell word list.
fn upstream_flags(up: &Upstream) -> String {
    let cmd = up.command(&["sync"]);
    cmd.get_args()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `script` as a CI runner runs a job's script (`bash -eo pipefail`), in `dir`, with the
/// mm-pkg under test first on the PATH, no key or webhook from this environment, and `env`.
fn run_script(script: &str, dir: &Path, env: &[(&str, String)]) {
    let bin = dir.join(".bin");
    fs::create_dir_all(&bin).unwrap();
    let link = bin.join("mm-pkg");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mm-pkg"), &link).unwrap();
    }
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
        .current_dir(dir)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("HOME", dir)
        .env("SOURCE_DATE_EPOCH", "1764000000")
        .env("XDG_CACHE_HOME", dir.join(".cache"));
    for var in common::mirror::RUNNER_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = output(&mut cmd);
    assert!(out.status.success(), "{script}\nfailed:\n{}", text(&out));
}

/// True for a script line or step that installs tools (a runner's business, not the test's).
fn installs(script: &str) -> bool {
    let first = script.trim_start();
    [
        "$MM_PKG_INSTALL",
        "eval \"$MM_PKG_INSTALL\"",
        "apt-get",
        "sudo apt-get",
        "cargo install",
    ]
    .iter()
    .any(|p| first.starts_with(p))
}

/// What a pipeline keeps between runs: the published repository and its private state, as
/// directories rclone writes to.
struct Remote {
    published: PathBuf,
    state: PathBuf,
}

/// One run of the GitHub example: the plan job's steps, the planned builds, and the publish
/// job's steps, each in its own directory; returns the change list the publish job wrote.
fn github_run(up: &Upstream, remote: &Remote, follow: &str, round: &str) -> String {
    let wf = yaml("github-actions.yml");
    let jobs = &wf["jobs"];
    let env = |dir: &Path| {
        vec![
            ("MM_PKG_FOLLOW", follow.to_string()),
            ("MM_PKG_REMOTE", remote.published.display().to_string()),
            ("MM_PKG_STATE", remote.state.display().to_string()),
            ("RCLONE_CONF", String::new()),
            (
                "GITHUB_OUTPUT",
                dir.join("github-output").display().to_string(),
            ),
            (
                "MM_PKG_SIGN_KEY",
                fs::read_to_string(up.sign_key()).unwrap(),
            ),
        ]
    };
    let steps = |job: &str| -> Vec<String> {
        jobs[job]["steps"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| s["run"].as_str().map(str::to_string))
            .filter(|r| !installs(r))
            .collect()
    };
    let plan_dir = up.path(&format!("{round}-github-plan"));
    fs::create_dir_all(&plan_dir).unwrap();
    for script in steps("plan") {
        run_script(&script, &plan_dir, &env(&plan_dir));
    }
    let plan: serde_json::Value =
        serde_json::from_slice(&fs::read(plan_dir.join("plan.json")).unwrap()).unwrap();
    let files = run_planned_builds(up, &plan, &format!("{round}-github-"));
    // download-artifact, merge-multiple: every package and the plan in incoming/.
    let publish = up.path(&format!("{round}-github-publish"));
    fs::create_dir_all(publish.join("incoming")).unwrap();
    for f in files.iter().chain([&plan_dir.join("plan.json")]) {
        fs::copy(f, publish.join("incoming").join(f.file_name().unwrap())).unwrap();
    }
    for script in steps("publish") {
        run_script(&script, &publish, &env(&publish));
    }
    // The publish job never had the packages of earlier runs.
    let held = run(std::process::Command::new("find")
        .arg(publish.join("repo/apt/pool"))
        .arg(publish.join("repo/yum/Packages"))
        .args(["-type", "f"]));
    assert_eq!(held.lines().count(), files.len(), "{held}");
    fs::read_to_string(publish.join("changes.txt")).unwrap()
}

/// One run of the GitLab example: the plan job's script (which writes the child pipeline),
/// the planned builds, and the child pipeline's publish job; returns its change list.
fn gitlab_run(up: &Upstream, remote: &Remote, follow: &str, round: &str) -> String {
    let ci = yaml("gitlab-ci.yml");
    let rclone_conf = up.path("rclone.conf");
    fs::write(&rclone_conf, "").unwrap();
    let env = |_: &Path| {
        vec![
            ("MM_PKG_FOLLOW", follow.to_string()),
            ("MM_PKG_REMOTE", remote.published.display().to_string()),
            ("MM_PKG_STATE", remote.state.display().to_string()),
            ("RCLONE_CONF", rclone_conf.display().to_string()),
            ("MM_PKG_INSTALL", "true".to_string()),
            ("CI_PIPELINE_ID", "7".to_string()),
            (
                "MM_PKG_SIGN_KEY",
                fs::read_to_string(up.sign_key()).unwrap(),
            ),
        ]
    };
    let lines = |job: &serde_norway::Value| -> Vec<String> {
        job["script"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .filter(|l| !installs(l))
            .collect()
    };
    let plan_dir = up.path(&format!("{round}-gitlab-plan"));
    fs::create_dir_all(&plan_dir).unwrap();
    for line in lines(&ci["plan"]) {
        run_script(&line, &plan_dir, &env(&plan_dir));
    }
    let plan: serde_json::Value =
        serde_json::from_slice(&fs::read(plan_dir.join("plan.json")).unwrap()).unwrap();
    let child: serde_norway::Value =
        serde_norway::from_str(&fs::read_to_string(plan_dir.join("child-pipeline.yml")).unwrap())
            .unwrap();
    let files = run_planned_builds(up, &plan, &format!("{round}-gitlab-"));
    // The publish job gets every build job's dist/ and the plan job's plan.json.
    let publish = up.path(&format!("{round}-gitlab-publish"));
    fs::create_dir_all(publish.join("dist")).unwrap();
    for f in &files {
        fs::copy(f, publish.join("dist").join(f.file_name().unwrap())).unwrap();
    }
    fs::copy(plan_dir.join("plan.json"), publish.join("plan.json")).unwrap();
    for line in lines(&child["publish"]) {
        run_script(&line, &publish, &env(&publish));
    }
    fs::read_to_string(publish.join("changes.txt")).unwrap()
}

#[test]
fn the_publish_jobs_upload_from_the_state_alone_what_sync_publishes() {
    for tool in ["rclone", "jq", "bash"] {
        if !have(tool) {
            return;
        }
    }
    let up = Upstream::new();
    let specs = ["--spec", "9.11", "--edition", "enterprise,team"];
    let follow = format!("{} {}", specs.join(" "), upstream_flags(&up));
    let one = up.path("sync-repo");
    type Run = fn(&Upstream, &Remote, &str, &str) -> String;
    let pipelines: [(&str, Run); 2] = [("github", github_run), ("gitlab", gitlab_run)];
    let remotes: Vec<Remote> = pipelines
        .iter()
        .map(|(name, _)| Remote {
            published: up.path(&format!("{name}-remote")),
            state: up.path(&format!("{name}-state")),
        })
        .collect();
    // Three runs, each publishing a newer 9.11 into the same remotes; the third removes the
    // index files of the first.
    for (round, version) in [
        ("first", "9.11.90"),
        ("second", "9.11.91"),
        ("third", "9.11.92"),
    ] {
        up.publish_both(&[version]);
        let out = up.sync(&one, &specs);
        assert!(out.status.success(), "{}", text(&out));
        for ((name, pipeline), remote) in pipelines.iter().zip(&remotes) {
            let changes = pipeline(&up, remote, &follow, round);
            // Only this run's packages are uploaded; the publish job never had the others.
            let pool: Vec<&str> = changes
                .lines()
                .filter_map(|l| l.strip_prefix("pool "))
                .collect();
            assert_eq!(pool.len(), 4, "{name} {round}:\n{changes}");
            assert!(
                pool.iter().all(|p| p.contains(version)),
                "{name} {round}:\n{changes}"
            );
            let steps: Vec<&str> = changes
                .lines()
                .map(|l| l.split(' ').next().unwrap())
                .collect();
            let mut sorted = steps.clone();
            let order = ["pool", "indexes", "plain", "signed", "remove"];
            sorted.sort_by_key(|s| order.iter().position(|o| o == s));
            assert_eq!(steps, sorted, "{name} {round}: not in upload order");
            assert!(steps.contains(&"signed"), "{name} {round}:\n{changes}");
            assert_eq!(
                steps.contains(&"remove"),
                round == "third",
                "{name} {round}:\n{changes}"
            );

            // The remote is what sync publishes, byte for byte; the state is sync's .mm-pkg.
            let synced = tree(&one);
            let published: BTreeMap<String, Vec<u8>> = synced
                .iter()
                .filter(|(k, _)| !k.starts_with(".mm-pkg/"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let private: BTreeMap<String, Vec<u8>> = synced
                .iter()
                .filter_map(|(k, v)| {
                    let rest = k.strip_prefix(".mm-pkg/")?;
                    (!rest.starts_with("tmp/")).then(|| (rest.to_string(), v.clone()))
                })
                .collect();
            let (theirs, state) = (tree(&remote.published), tree(&remote.state));
            let differ = |a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>| {
                a.keys()
                    .chain(b.keys())
                    .filter(|k| a.get(*k) != b.get(*k))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert!(
                differ(&theirs, &published).is_empty(),
                "{name} {round}: the remote differs from sync's repository: {:?}",
                differ(&theirs, &published)
            );
            assert!(
                differ(&state, &private).is_empty(),
                "{name} {round}: the state differs from sync's: {:?}",
                differ(&state, &private)
            );
        }
    }
}
