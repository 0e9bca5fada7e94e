//! Service tokens, one mechanism for every credential a program presents: `tillwire token` issues (printed once),
//! lists and revokes them; a device key and a directory token made before this mechanism keep working after the
//! upgrade; only hashes are stored; every issue and revocation is audited.

mod common;

use std::process::Stdio;

use common::BIN;
use sqlx::Connection;
use tillwire::app::AREAS;
use tillwire_platform::area;
use tillwire_platform::tokens::{Scope, TokenError, Tokens};
use tillwire_platform::{Store, sha256_hex};
use tillwire_testkit::{Backend, TestDatabase};

/// `tillwire args…` against `db`, in an empty directory; (success, stdout, stderr).
async fn tillwire(db: &TestDatabase, args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("dir");
    let output = tokio::process::Command::new(BIN)
        .args(args)
        .current_dir(dir.path())
        .env("TILLWIRE_DATABASE_URL", db.url())
        .env("TILLWIRE_DATA_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run tillwire");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// How many rows of the database hold `text` in a token or audit column.
async fn rows_holding(db: &TestDatabase, text: &str) -> i64 {
    let sql = "SELECT (SELECT COUNT(*) FROM service_tokens WHERE token_hash = $1 OR prefix = $1 OR name = $1)
                    + (SELECT COUNT(*) FROM token_audit WHERE detail LIKE '%' || $1 || '%')";
    match db.backend() {
        Backend::Sqlite => {
            let mut connection = sqlx::SqliteConnection::connect(db.url())
                .await
                .expect("connect");
            sqlx::query_scalar(sql)
                .bind(text)
                .fetch_one(&mut connection)
                .await
                .expect("count")
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(db.url())
                .await
                .expect("connect");
            sqlx::query_scalar(sql)
                .bind(text)
                .fetch_one(&mut connection)
                .await
                .expect("count")
        }
    }
}

tillwire_testkit::both_backends!(
    the_token_command_issues_lists_and_revokes,
    |db| async move {
        let (ok, _, stderr) = tillwire(&db, &["init"]).await;
        assert!(ok, "{stderr}");

        let (ok, token, stderr) = tillwire(
            &db,
            &[
                "token",
                "issue",
                "--name",
                "notifications",
                "--scope",
                "directory",
            ],
        )
        .await;
        assert!(ok, "{stderr}");
        let token = token.trim().to_owned();
        assert!(token.starts_with("tw_") && token.len() == 43, "{token}");
        assert!(stderr.contains("shown once"), "{stderr}");
        // Only the hash is kept: the token is in no column, its hash is.
        assert_eq!(rows_holding(&db, &token).await, 0);
        assert_eq!(rows_holding(&db, &sha256_hex(&token)).await, 1);

        // A scope nobody has, and a device key without its unit, are refused with the reason.
        let (ok, _, stderr) =
            tillwire(&db, &["token", "issue", "--name", "x", "--scope", "nope"]).await;
        assert!(
            !ok && stderr.contains("scope: admin, device or one of"),
            "{stderr}"
        );
        let (ok, _, stderr) =
            tillwire(&db, &["token", "issue", "--name", "x", "--scope", "device"]).await;
        assert!(!ok && stderr.contains("unit"), "{stderr}");
        let (ok, key, stderr) = tillwire(
            &db,
            &[
                "token", "issue", "--name", "till 9", "--scope", "device", "--unit", "1",
            ],
        )
        .await;
        assert!(ok, "{stderr}");

        // The list names each token by its prefix, never in full.
        let (ok, listed, stderr) = tillwire(&db, &["token", "list"]).await;
        assert!(ok, "{stderr}");
        assert!(listed.contains("directory\tnotifications\ttw_"), "{listed}");
        assert!(listed.contains("device unit 1\ttill 9"), "{listed}");
        assert!(
            !listed.contains(&token) && !listed.contains(key.trim()),
            "{listed}"
        );

        let store = Store::connect(db.url()).await.expect("connect");
        let identity = Tokens(&store)
            .authenticate(&token)
            .await
            .expect("authenticate")
            .expect("a valid token");
        assert!(identity.allows("directory") && !identity.allows("kitchen"));
        let device = Tokens(&store)
            .authenticate(key.trim())
            .await
            .expect("authenticate")
            .expect("a valid key");
        assert_eq!(device.device_unit(), Some(1));

        // A page that manages device keys cannot revoke a service token.
        let refused = Tokens(&store)
            .revoke_of(&Scope::DEVICE, identity.id, "test")
            .await;
        assert!(matches!(refused, Err(TokenError::NotFound)), "{refused:?}");
        assert!(
            Tokens(&store)
                .authenticate(&token)
                .await
                .expect("authenticate")
                .is_some()
        );

        let (ok, _, stderr) = tillwire(&db, &["token", "revoke", &identity.id.to_string()]).await;
        assert!(ok, "{stderr}");
        assert!(
            Tokens(&store)
                .authenticate(&token)
                .await
                .expect("authenticate")
                .is_none()
        );
        let (ok, listed, _) = tillwire(&db, &["token", "list"]).await;
        assert!(
            ok && listed.contains("notifications\ttw_") && listed.contains("revoked"),
            "{listed}"
        );
        let (ok, _, stderr) = tillwire(&db, &["token", "revoke", "9999"]).await;
        assert!(!ok && stderr.contains("token not found"), "{stderr}");

        // Every issue and revocation is in the audit, with who did it.
        let audit = Tokens(&store).audit(10).await.expect("audit");
        let lines: Vec<(&str, &str, i64)> = audit
            .iter()
            .map(|line| (line.actor.as_str(), line.action.as_str(), line.token_id))
            .collect();
        assert_eq!(
            lines,
            [
                ("cli", "revoke", identity.id),
                ("cli", "issue", device.id),
                ("cli", "issue", identity.id)
            ]
        );
    }
);

tillwire_testkit::both_backends!(
    keys_and_tokens_made_before_the_upgrade_keep_working,
    |db| async move {
        // The schema as it was: the platform's, the units' and the directory's first migrations.
        let store = Store::connect(db.url()).await.expect("connect");
        let before: Vec<&[tillwire_platform::Migration]> = vec![
            &tillwire_platform::MIGRATIONS[..4],
            &tillwire_units::MIGRATIONS[..1],
            &tillwire_directory::MIGRATIONS[..1],
        ];
        store.migrate(&before).await.expect("the old schema");
        let (device_key, old_key, service_token) = (
            "tw_till-key-made-long-ago-0000000000000000",
            "tw_revoked-key-000000000000000000000000000",
            "twd_service-token-0000000000000000000000",
        );
        tillwire_platform::write!(&store, db => sqlx::query(
        "INSERT INTO units (id, name, is_default, created_ms) VALUES (7, 'Магазин', TRUE, 1)",
    )
    .execute(db)
    .await
    .map(|r| r.rows_affected()))
        .expect("a unit");
        for (plain, revoked) in [(device_key, false), (old_key, true)] {
            tillwire_platform::write!(&store, db => sqlx::query(
            "INSERT INTO api_keys (unit_id, name, key_hash, prefix, revoked, created_ms) VALUES (7, 'till', $1, $2, $3, 5)",
        )
        .bind(sha256_hex(plain))
        .bind(&plain[..11])
        .bind(revoked)
        .execute(db)
        .await
        .map(|r| r.rows_affected()))
        .expect("a device key");
        }
        tillwire_platform::write!(&store, db => sqlx::query(
        "INSERT INTO directory_tokens (name, token_hash, prefix, revoked, created_ms) VALUES ('router', $1, $2, FALSE, 6)",
    )
    .bind(sha256_hex(service_token))
    .bind(&service_token[..10])
    .execute(db)
    .await
    .map(|r| r.rows_affected()))
    .expect("a directory token");

        store
            .migrate(&area::migrations(AREAS))
            .await
            .expect("the upgrade");
        let tokens = Tokens(&store);
        let device = tokens
            .authenticate(device_key)
            .await
            .expect("authenticate")
            .expect("the till's key still works");
        assert_eq!(
            (device.device_unit(), device.name.as_str()),
            (Some(7), "till")
        );
        assert!(
            tokens
                .authenticate(old_key)
                .await
                .expect("authenticate")
                .is_none(),
            "revoked stays revoked"
        );
        let service = tokens
            .authenticate(service_token)
            .await
            .expect("authenticate")
            .expect("the service's token still works");
        assert!(service.allows("directory") && service.device_unit().is_none());
        let listed = tokens.list(None).await.expect("list");
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().all(|token| token.created_by == "migration"));
    }
);
