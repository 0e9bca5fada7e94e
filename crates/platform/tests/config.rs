//! The layers of the settings, lowest first: defaults, `tillwire.toml`, `.env`, the environment, flags. Each test
//! passes its own environment, so nothing here reads or changes the process's.

use std::path::{Path, PathBuf};

use tillwire_platform::Settings;
use tillwire_platform::config::{ConfigError, Overrides, PLATFORM_ENV, Sources};

struct Layers {
    dir: tempfile::TempDir,
}

impl Layers {
    fn new() -> Self {
        Layers {
            dir: tempfile::tempdir().expect("dir"),
        }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn load(
        &self,
        toml: Option<&str>,
        dotenv: Option<&str>,
        environment: &[(&str, &str)],
        flags: Overrides,
    ) -> Result<Settings, ConfigError> {
        let config_file = toml.map(|text| self.file("tillwire.toml", text));
        let dotenv = dotenv.map(|text| self.file(".env", text));
        Settings::load(Sources {
            flags: Overrides {
                config_file: flags.config_file.or(config_file),
                ..flags
            },
            environment: environment
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            dotenv,
            variables: PLATFORM_ENV.iter().collect(),
        })
    }
}

fn listen(settings: &Settings) -> String {
    settings.listen.to_string()
}

#[test]
fn each_layer_overrides_the_one_below() {
    let layers = Layers::new();
    let none = Overrides::default;
    let defaults = layers.load(None, None, &[], none()).expect("defaults");
    assert_eq!(listen(&defaults), "127.0.0.1:8000");
    assert_eq!(defaults.data_dir, Path::new("data"));
    assert_eq!(defaults.database_url, "sqlite://data/tillwire.sqlite3");
    assert!(!defaults.secure_cookies);
    assert_eq!(defaults.api_key, None);

    let toml = "listen = \"127.0.0.1:8001\"\ndata_dir = \"/srv/tw\"\nsecure_cookies = true\n";
    let file = layers.load(Some(toml), None, &[], none()).expect("file");
    assert_eq!(listen(&file), "127.0.0.1:8001");
    // The database follows the data directory unless it is set itself.
    assert_eq!(file.database_url, "sqlite:///srv/tw/tillwire.sqlite3");
    assert!(file.secure_cookies);

    let dotenv = "TILLWIRE_LISTEN=127.0.0.1:8002\nTILLWIRE_SECURE_COOKIES=false\n";
    let with_dotenv = layers
        .load(Some(toml), Some(dotenv), &[], none())
        .expect(".env");
    assert_eq!(listen(&with_dotenv), "127.0.0.1:8002");
    assert!(!with_dotenv.secure_cookies, "a typed variable is a boolean");
    assert_eq!(
        with_dotenv.data_dir,
        Path::new("/srv/tw"),
        "the file's other keys stay"
    );

    let environment = [("TILLWIRE_LISTEN", "127.0.0.1:8003")];
    let with_env = layers
        .load(Some(toml), Some(dotenv), &environment, none())
        .expect("environment");
    assert_eq!(listen(&with_env), "127.0.0.1:8003");

    let flags = Overrides {
        listen: Some("127.0.0.1:8004".into()),
        database_url: Some("postgres://db/tw".into()),
        ..Overrides::default()
    };
    let with_flags = layers
        .load(Some(toml), Some(dotenv), &environment, flags)
        .expect("flags");
    assert_eq!(listen(&with_flags), "127.0.0.1:8004");
    assert_eq!(with_flags.database_url, "postgres://db/tw");

    // An empty variable is unset: the layer below shows through.
    let blank = layers
        .load(
            Some(toml),
            None,
            &[("TILLWIRE_LISTEN", "  ")],
            Overrides::default(),
        )
        .expect("blank");
    assert_eq!(listen(&blank), "127.0.0.1:8001");
}

#[test]
fn the_config_file_can_come_from_the_environment_or_dotenv() {
    let layers = Layers::new();
    let elsewhere = layers.file("elsewhere.toml", "listen = \"127.0.0.1:9100\"\n");
    let from_env = layers
        .load(
            None,
            None,
            &[("TILLWIRE_CONFIG", elsewhere.to_str().expect("utf-8"))],
            Overrides::default(),
        )
        .expect("TILLWIRE_CONFIG");
    assert_eq!(listen(&from_env), "127.0.0.1:9100");
    let from_dotenv = layers
        .load(
            None,
            Some(&format!("TILLWIRE_CONFIG={}\n", elsewhere.display())),
            &[],
            Overrides::default(),
        )
        .expect("TILLWIRE_CONFIG in .env");
    assert_eq!(listen(&from_dotenv), "127.0.0.1:9100");
    let missing = layers
        .load(
            None,
            None,
            &[("TILLWIRE_CONFIG", "/nonexistent/tillwire.toml")],
            Overrides::default(),
        )
        .expect_err("a named file must exist");
    assert!(
        missing
            .to_string()
            .starts_with("cannot read /nonexistent/tillwire.toml"),
        "{missing}"
    );
}

#[test]
fn elqs_api_key_is_an_alias_and_stays_text() {
    let layers = Layers::new();
    let elq = layers
        .load(
            None,
            Some("API_KEY=0123456789\n"),
            &[],
            Overrides::default(),
        )
        .expect("ELQ's .env");
    assert_eq!(
        elq.api_key.as_ref().map(|k| k.expose()),
        Some("0123456789"),
        "digits stay a key, not a number"
    );
    let both = layers
        .load(
            None,
            Some("API_KEY=from-dotenv\n"),
            &[("API_KEY", "elq"), ("TILLWIRE_API_KEY", "tillwire")],
            Overrides::default(),
        )
        .expect("both names");
    assert_eq!(
        both.api_key.as_ref().map(|k| k.expose()),
        Some("tillwire"),
        "tillwire's own name wins over the alias"
    );
    assert_eq!(format!("{:?}", both.api_key), "Some(Secret(***))");
}

#[test]
fn a_bad_value_names_the_setting_and_where_it_came_from() {
    let layers = Layers::new();
    let error = layers
        .load(
            None,
            None,
            &[("TILLWIRE_LISTEN", "everywhere")],
            Overrides::default(),
        )
        .expect_err("not an address")
        .to_string();
    assert_eq!(
        error,
        "setting listen (environment variable TILLWIRE_LISTEN): \"everywhere\" is not an address such as 127.0.0.1:8000"
    );
    let error = layers
        .load(
            Some("timezone = \"Mars/Olympus\"\n"),
            None,
            &[],
            Overrides::default(),
        )
        .expect_err("not a zone")
        .to_string();
    assert!(
        error.starts_with("setting timezone (") && error.contains("tillwire.toml"),
        "{error}"
    );
    let error = layers
        .load(
            None,
            Some("TILLWIRE_SECURE_COOKIES=sometimes\n"),
            &[],
            Overrides::default(),
        )
        .expect_err("not a boolean")
        .to_string();
    assert!(
        error.contains("secure_cookies") || error.contains("TILLWIRE_SECURE_COOKIES"),
        "{error}"
    );
    assert!(error.contains(".env"), "{error}");
    // The grace period of a stop: seconds, default 10, at most an hour.
    assert_eq!(
        layers
            .load(None, None, &[], Overrides::default())
            .expect("defaults")
            .shutdown_grace,
        std::time::Duration::from_secs(10)
    );
    let grace = layers
        .load(
            None,
            None,
            &[("TILLWIRE_SHUTDOWN_GRACE_SECS", "3")],
            Overrides::default(),
        )
        .expect("three seconds");
    assert_eq!(grace.shutdown_grace, std::time::Duration::from_secs(3));
    let error = layers
        .load(
            None,
            None,
            &[("TILLWIRE_SHUTDOWN_GRACE_SECS", "7200")],
            Overrides::default(),
        )
        .expect_err("two hours")
        .to_string();
    assert_eq!(
        error,
        "setting shutdown_grace_secs (environment variable TILLWIRE_SHUTDOWN_GRACE_SECS): seconds, at most 3600"
    );
    let error = layers
        .load(
            None,
            None,
            &[],
            Overrides {
                database_url: Some("mysql://db".into()),
                ..Overrides::default()
            },
        )
        .expect_err("not a database tillwire runs on")
        .to_string();
    assert_eq!(
        error,
        "setting database_url (command-line flag --database-url): expected sqlite://PATH or postgres://…"
    );
    let error = layers
        .load(Some("listen = [1, 2\n"), None, &[], Overrides::default())
        .expect_err("broken TOML")
        .to_string();
    assert!(error.contains("tillwire.toml"), "{error}");
}
