//! The command line of the real binary: help, the one-shot commands, and clear errors for bad
//! settings.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::BIN;

/// Settings a developer's shell might have exported, which would change what a command does.
const INHERITED_SETTINGS: &[&str] = &[
    "TILLWIRE_CONFIG",
    "TILLWIRE_DATABASE_URL",
    "TILLWIRE_DATA_DIR",
    "TILLWIRE_LISTEN",
    "TILLWIRE_TIMEZONE",
    "TILLWIRE_DAY_ROLLOVER_HOUR",
    "TILLWIRE_RETENTION_DAYS",
    "API_KEY",
];

/// A command that should finish on its own; if it is still running after this, it is killed and
/// the test fails (e.g. `serve` that started despite a bad setting).
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

/// Runs `tillwire args…` in `dir` (so no `tillwire.toml` or `.env` of the repository is read),
/// with a clean environment for tillwire's own settings plus `envs`.
async fn run(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in INHERITED_SETTINGS {
        command.env_remove(name);
    }
    command.envs(envs.iter().copied());
    let child = command
        .spawn()
        .unwrap_or_else(|error| panic!("could not run {BIN}: {error}"));
    match tokio::time::timeout(COMMAND_LIMIT, child.wait_with_output()).await {
        Ok(output) => output.unwrap_or_else(|error| panic!("tillwire {args:?}: {error}")),
        Err(_) => panic!("tillwire {args:?} did not exit within {COMMAND_LIMIT:?}"),
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn describe(args: &[&str], output: &Output) -> String {
    format!(
        "tillwire {args:?} exited with {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    )
}

/// Runs a command that must succeed and returns its stdout.
async fn succeed(dir: &Path, args: &[&str]) -> String {
    let output = run(dir, args, &[]).await;
    assert!(output.status.success(), "{}", describe(args, &output));
    stdout(&output)
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tillwire-cli-")
        .tempdir()
        .expect("create a scratch directory")
}

#[tokio::test]
async fn help_for_the_program_and_every_subcommand() {
    let dir = scratch();
    let help = succeed(dir.path(), &["--help"]).await;
    for subcommand in ["serve", "migrate", "init", "demo", "maintenance"] {
        assert!(
            help.contains(subcommand),
            "--help lacks {subcommand}:\n{help}"
        );
    }
    let expectations: &[(&str, &[&str])] = &[
        (
            "serve",
            &["--listen", "--demo", "--database-url", "--data-dir"],
        ),
        ("migrate", &["--database-url"]),
        ("init", &["--database-url"]),
        ("demo", &["--database-url"]),
        ("maintenance", &["--database-url"]),
    ];
    for (subcommand, options) in expectations {
        let help = succeed(dir.path(), &[subcommand, "--help"]).await;
        for option in *options {
            assert!(
                help.contains(option),
                "`{subcommand} --help` lacks {option}:\n{help}"
            );
        }
        let via_help = succeed(dir.path(), &["help", subcommand]).await;
        assert_eq!(via_help, help, "`help {subcommand}`");
    }
    let version = succeed(dir.path(), &["--version"]).await;
    assert!(version.starts_with("tillwire "), "{version}");
    // Nothing was created by asking for help.
    assert_eq!(
        std::fs::read_dir(dir.path())
            .expect("read the scratch dir")
            .count(),
        0
    );
}

#[tokio::test]
async fn a_missing_subcommand_is_a_usage_error() {
    let dir = scratch();
    let output = run(dir.path(), &[], &[]).await;
    assert!(!output.status.success(), "{}", describe(&[], &output));
    assert!(
        stderr(&output).contains("Usage"),
        "{}",
        describe(&[], &output)
    );
}

#[tokio::test]
async fn migrate_then_init_create_a_fresh_sqlite_database() {
    let dir = scratch();
    let file = dir.path().join("nested").join("shop.sqlite3");
    let url = format!("sqlite://{}", file.display());
    assert!(!file.exists());

    let migrated = succeed(dir.path(), &["migrate", "--database-url", &url]).await;
    assert!(migrated.contains("Database is up to date"), "{migrated}");
    assert!(file.is_file(), "migrate did not create {}", file.display());
    assert!(
        !migrated.contains("Password:"),
        "migrate created an admin: {migrated}"
    );

    let first = succeed(dir.path(), &["init", "--database-url", &url]).await;
    assert!(
        first.contains("First admin created. Username: admin  Its password is in "),
        "{first}"
    );
    assert!(first.contains("Initialised."), "{first}");
    let second = succeed(dir.path(), &["init", "--database-url", &url]).await;
    assert!(
        !second.contains("Password"),
        "the second init printed a password: {second}"
    );
    assert!(second.contains("Initialised."), "{second}");
}

#[tokio::test]
async fn the_default_database_lives_in_the_data_dir() {
    let dir = scratch();
    let data = dir.path().join("data-here");
    let data_arg = data.to_str().expect("UTF-8 path");
    succeed(dir.path(), &["--data-dir", data_arg, "migrate"]).await;
    assert!(
        data.join("tillwire.sqlite3").is_file(),
        "no tillwire.sqlite3 in {}",
        data.display()
    );
    // Only tillwire's user can read it: the directory 0700, the database 0600 (it holds sessions and the audit).
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("tillwire.sqlite3")), 0o600, "the database");
    // An existing directory made by someone else's umask is tightened too.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    succeed(dir.path(), &["--data-dir", data_arg, "migrate"]).await;
    assert_eq!(mode(&data), 0o700, "the data directory, again");
    // The same through the environment.
    let other = dir.path().join("from-env");
    let output = run(
        dir.path(),
        &["migrate"],
        &[("TILLWIRE_DATA_DIR", other.to_str().expect("UTF-8 path"))],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        describe(&["migrate"], &output)
    );
    assert!(other.join("tillwire.sqlite3").is_file());
}

/// At a terminal (here a pseudo-terminal from `script`), the person who started tillwire reads the password once
/// on the screen, and no file is left behind.
#[tokio::test]
async fn at_a_terminal_the_admin_password_is_shown_once() {
    let dir = scratch();
    let command = format!("{BIN} init");
    let output = tokio::process::Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run `script` (util-linux's bsdutils)");
    let shown = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{shown}");
    assert_eq!(shown.matches("Password: ").count(), 1, "{shown}");
    assert!(
        !dir.path()
            .join("data")
            .join("first-admin-password")
            .exists()
    );
}

tillwire_testkit::both_backends!(init_keeps_the_admin_password_out_of_logs, |db| async move {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch();
    let url = db.url().to_owned();
    // Standard output is a pipe here, as a service's log is: the password goes to a file only its owner reads.
    let first = succeed(dir.path(), &["init", "--database-url", &url]).await;
    let line = first
        .lines()
        .find(|line| line.starts_with("First admin created."))
        .unwrap_or_else(|| panic!("no banner in {first}"));
    assert!(!first.contains("Password: "), "{first}");
    let file = dir.path().join("data").join("first-admin-password");
    assert!(line.contains(&file.display().to_string()), "{line}");
    let mode = std::fs::metadata(&file)
        .expect("the password file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the password file's mode");
    let password = std::fs::read_to_string(&file).expect("read the password file");
    let password = password.trim();
    assert!(password.len() >= 10, "a short password: {password:?}");
    assert!(!first.contains(password), "{first}");

    let second = succeed(dir.path(), &["init", "--database-url", &url]).await;
    assert!(
        !second.contains("password"),
        "the second init mentioned a password: {second}"
    );
    assert!(!second.contains(password), "{second}");
    // `demo` loads ELQ's five wares once; a second run adds none.
    let demo = succeed(dir.path(), &["demo", "--database-url", &url]).await;
    assert!(demo.contains("Demo catalogue: 5 wares added."), "{demo}");
    let again = succeed(dir.path(), &["demo", "--database-url", &url]).await;
    assert!(again.contains("Demo catalogue: 0 wares added."), "{again}");
    assert!(!again.contains("Password"), "{again}");
});

tillwire_testkit::both_backends!(maintenance_reports_done, |db| async move {
    let dir = scratch();
    let url = db.url().to_owned();
    succeed(dir.path(), &["init", "--database-url", &url]).await;
    let output = succeed(dir.path(), &["maintenance", "--database-url", &url]).await;
    assert!(output.contains("Optimizing..."), "{output}");
    assert!(output.contains("Optimization: Done"), "{output}");
});

#[tokio::test]
async fn an_unsupported_database_url_fails_clearly() {
    let dir = scratch();
    // The message names the setting and where the bad value came from.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        (
            &["--database-url", "mysql://x", "migrate"],
            &[],
            "setting database_url (command-line flag --database-url)",
        ),
        (
            &["serve", "--database-url", "mysql://x"],
            &[],
            "setting database_url (command-line flag --database-url)",
        ),
        (
            &["migrate"],
            &[("TILLWIRE_DATABASE_URL", "mysql://x")],
            "setting database_url (environment variable TILLWIRE_DATABASE_URL)",
        ),
    ];
    for (args, envs, named) in cases {
        let output = run(dir.path(), args, envs).await;
        let all = describe(args, &output);
        assert!(!output.status.success(), "{all}");
        let message = stderr(&output);
        assert!(message.contains(named), "{all}");
        assert!(
            message.contains("sqlite://") && message.contains("postgres://"),
            "{all}"
        );
        assert!(!message.contains("panicked"), "{all}");
    }
    // Nothing was created for it.
    assert_eq!(std::fs::read_dir(dir.path()).expect("read dir").count(), 0);
}

#[tokio::test]
async fn an_unreachable_database_fails_clearly() {
    let dir = scratch();
    let port = tillwire_testkit::free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/nothing");
    let args = ["migrate", "--database-url", url.as_str()];
    let output = run(dir.path(), &args, &[]).await;
    let all = describe(&args, &output);
    assert!(!output.status.success(), "{all}");
    assert!(stderr(&output).contains("opening the database"), "{all}");
    assert!(!stderr(&output).contains("panicked"), "{all}");
}

#[tokio::test]
async fn an_invalid_listen_address_fails_clearly() {
    let dir = scratch();
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("UTF-8 path");
    let output = run(
        dir.path(),
        &["serve", "--data-dir", data_arg],
        &[("TILLWIRE_LISTEN", "not-an-address")],
    )
    .await;
    let all = describe(&["serve"], &output);
    assert!(!output.status.success(), "{all}");
    let message = stderr(&output);
    assert!(message.contains("TILLWIRE_LISTEN"), "{all}");
    assert!(message.contains("\"not-an-address\""), "{all}");
    assert!(message.contains("is not an address"), "{all}");
    assert!(!message.contains("panicked"), "{all}");
    assert!(
        !data.exists(),
        "serve created its data before checking its settings"
    );

    // The flag is checked the same way.
    let args = [
        "serve",
        "--data-dir",
        data_arg,
        "--listen",
        "127.0.0.1:99999",
    ];
    let output = run(dir.path(), &args, &[]).await;
    let all = describe(&args, &output);
    assert!(!output.status.success(), "{all}");
    assert!(
        stderr(&output).contains("\"127.0.0.1:99999\" is not an address"),
        "{all}"
    );
}

#[tokio::test]
async fn a_taken_port_fails_clearly() {
    let dir = scratch();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let address = taken.local_addr().expect("its address").to_string();
    let data = dir.path().join("data");
    let args = [
        "serve",
        "--listen",
        address.as_str(),
        "--data-dir",
        data.to_str().expect("UTF-8 path"),
    ];
    let output = run(dir.path(), &args, &[]).await;
    let all = describe(&args, &output);
    assert!(!output.status.success(), "{all}");
    assert!(
        stderr(&output).contains(&format!("listening on {address}")),
        "{all}"
    );
    drop(taken);
}

/// Runs `tillwire args…` in `dir` with `input` on its standard input (a pipe, not a terminal).
async fn run_with_input(dir: &Path, args: &[&str], input: &str) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in INHERITED_SETTINGS {
        command.env_remove(name);
    }
    let mut child = command.spawn().expect("run tillwire");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.as_bytes())
        .await
        .expect("write stdin");
    drop(stdin);
    tokio::time::timeout(COMMAND_LIMIT, child.wait_with_output())
        .await
        .expect("tillwire exits")
        .expect("output")
}

#[tokio::test]
async fn an_operator_who_lost_the_password_gets_back_in() {
    let dir = scratch();
    let url = format!("sqlite://{}", dir.path().join("shop.sqlite3").display());
    let signs_in = |name: &'static str, password: &'static str| {
        let url = url.clone();
        async move {
            let store = tillwire_platform::Store::connect(&url)
                .await
                .expect("connect");
            let user = tillwire_platform::auth::Users(&store)
                .verify(name, password)
                .await
                .expect("verify");
            store.close().await;
            user.is_some()
        }
    };
    succeed(dir.path(), &["init", "--database-url", &url]).await;

    // A password piped in: never in the process list, never printed.
    let args = [
        "user",
        "add",
        "anna",
        "--role",
        "admin",
        "--database-url",
        &url,
    ];
    let added = run_with_input(dir.path(), &args, "correct horse battery\n").await;
    assert!(added.status.success(), "{}", describe(&args, &added));
    assert!(
        !stdout(&added).contains("correct horse"),
        "{}",
        stdout(&added)
    );
    assert!(signs_in("anna", "correct horse battery").await);

    let args = ["user", "password", "anna", "--database-url", &url];
    let reset = run_with_input(dir.path(), &args, "a brand new passphrase\n").await;
    assert!(reset.status.success(), "{}", describe(&args, &reset));
    assert!(signs_in("anna", "a brand new passphrase").await);
    assert!(!signs_in("anna", "correct horse battery").await);

    // Refusals name what is wrong and change nothing.
    for (args, input, says) in [
        (
            vec!["user", "add", "bob", "--role", "boss"],
            "correct horse battery\n",
            "role",
        ),
        (
            vec!["user", "add", "bob", "--role", "viewer"],
            "short\n",
            "password: at least 10",
        ),
        (
            vec!["user", "password", "nobody"],
            "correct horse battery\n",
            "no user named",
        ),
        (
            vec!["user", "add", "anna", "--role", "viewer"],
            "correct horse battery\n",
            "taken",
        ),
    ] {
        let mut args = args;
        args.extend(["--database-url", &url]);
        let refused = run_with_input(dir.path(), &args, input).await;
        assert!(!refused.status.success(), "{}", describe(&args, &refused));
        assert!(
            stderr(&refused).contains(says),
            "{}",
            describe(&args, &refused)
        );
    }
    assert!(!signs_in("bob", "correct horse battery").await);
}

/// A soft open-files limit of 256 (as a service manager might leave it) is raised to the hard limit at start, so
/// a thousand open screens do not stop the server accepting.
#[tokio::test]
async fn serve_raises_the_open_files_limit() {
    use tokio::io::AsyncBufReadExt;
    let dir = scratch();
    let url = format!("sqlite://{}", dir.path().join("shop.sqlite3").display());
    let port = tillwire_testkit::free_port();
    let script = format!(
        "ulimit -Sn 256 && exec {BIN} serve --listen 127.0.0.1:{port} --database-url {url} --data-dir {}",
        dir.path().display()
    );
    let mut command = tokio::process::Command::new("sh");
    command
        .args(["-c", &script])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for name in INHERITED_SETTINGS {
        command.env_remove(name);
    }
    let mut child = command.spawn().expect("run tillwire");
    let pid = child.id().expect("pid");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    tokio::time::timeout(COMMAND_LIMIT, async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if line.contains("tillwire is serving") {
                return;
            }
        }
        panic!("tillwire exited before serving");
    })
    .await
    .expect("tillwire serves");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let open_files: Vec<&str> = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("an open-files line")
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect();
    assert_eq!(
        open_files[0], open_files[1],
        "soft limit raised to the hard one: {limits}"
    );
    assert_ne!(open_files[0], "256", "{limits}");
    child.kill().await.expect("stop");
}
