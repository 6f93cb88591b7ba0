//! The CI examples: both parse as YAML and wire plan -> build matrix -> publish; and the
//! sequence they run (plan, each build from the plan's own arguments in its own output
//! directory with its own cache, one `repo add`, `notify`) gives the repository one `sync`
//! gives, byte for byte.

mod common;

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
fn run_planned_builds(up: &Upstream, plan: &serde_json::Value) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (i, entry) in plan["include"].as_array().unwrap().iter().enumerate() {
        let argv: Vec<String> = entry["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let job = up.path(&format!("job-{i}"));
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
    let files = run_planned_builds(&up, &plan);
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
