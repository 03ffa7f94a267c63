//! `frontdesk kb ingest` on bad input, through the real binary: every problem is reported
//! with its path (and line), the rest is ingested, and the exit code is non-zero only when
//! nothing could be ingested.

use std::path::Path;
use std::process::Command;

fn frontdesk(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the frontdesk binary runs")
}

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("frontdesk.toml");
    let data_dir = dir.join("data");
    std::fs::write(
        &path,
        format!(
            "[kb]\ndata_dir = {:?}\n\n[embedder]\nkind = \"none\"\n",
            data_dir.display().to_string()
        ),
    )
    .unwrap();
    path
}

#[test]
fn bad_files_are_reported_with_their_path_and_the_rest_is_ingested() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("help");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(
        corpus.join("good.md"),
        "---\ntitle: Reset your password\n---\n\nUse the reset link.\n",
    )
    .unwrap();
    std::fs::write(
        corpus.join("bad-utf8.md"),
        b"---\ntitle: Broken\n---\n\nCaf\xe9 au lait\n",
    )
    .unwrap();
    std::fs::write(
        corpus.join("broken-front-matter.md"),
        "---\ntitle: [unclosed\n---\n\n# Still here\n\nBody text.\n",
    )
    .unwrap();
    let huge = std::fs::File::create(corpus.join("huge.md")).unwrap();
    huge.set_len(50 * 1024 * 1024).unwrap();
    std::fs::write(
        corpus.join("tickets.jsonl"),
        concat!(
            r#"{"id":"t1","subject":"Refund","messages":[{"role":"customer","text":"mail me at a@b.co"}],"resolution":"refunded"}"#,
            "\nthis line is not json\n"
        ),
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.path().join("nowhere.md"), corpus.join("dangling.md")).unwrap();
    let config = config(dir.path());

    let output = frontdesk(
        &config,
        &["kb", "ingest", corpus.to_str().unwrap(), "--json"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&stdout).expect("--json prints the report");
    // good.md, broken-front-matter.md (ingested with its heading as title) and ticket t1.
    assert_eq!(report["documents_added"], 3, "{report:#}");
    let problems = report["problems"].as_array().unwrap();
    let find = |name: &str| {
        problems
            .iter()
            .find(|p| p["path"].as_str().unwrap_or_default().ends_with(name))
            .unwrap_or_else(|| panic!("no problem reported for {name}: {problems:#?}"))
            .clone()
    };
    assert_eq!(find("bad-utf8.md")["kind"], "invalid_utf8");
    assert_eq!(find("huge.md")["kind"], "too_large");
    assert_eq!(
        find("broken-front-matter.md")["kind"],
        "malformed_front_matter"
    );
    assert_eq!(find("dangling.md")["kind"], "unreadable");
    let ticket = find("tickets.jsonl");
    assert_eq!(
        (ticket["kind"].as_str(), ticket["line"].as_u64()),
        (Some("malformed_ticket"), Some(2))
    );

    // Ingesting again changes nothing and still succeeds.
    let again = frontdesk(
        &config,
        &["kb", "ingest", corpus.to_str().unwrap(), "--json"],
    );
    assert!(again.status.success());
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (
            report["documents_added"].as_u64(),
            report["documents_unchanged"].as_u64()
        ),
        (Some(0), Some(3))
    );

    // The ticket is searchable internally but was scrubbed of the email address.
    let search = frontdesk(&config, &["kb", "search", "refund", "--json"]);
    assert!(search.status.success());
    let result: serde_json::Value = serde_json::from_slice(&search.stdout).unwrap();
    assert!(result["keyword_only"].as_bool().unwrap());
    assert!(!String::from_utf8_lossy(&search.stdout).contains("a@b.co"));
}

#[test]
fn nothing_to_ingest_exits_non_zero_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let config = config(dir.path());
    let output = frontdesk(&config, &["kb", "ingest", empty.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing could be ingested"), "{stderr}");

    let missing = frontdesk(
        &config,
        &["kb", "ingest", dir.path().join("missing").to_str().unwrap()],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("missing"));
}
