//! Secrets at rest (a register's database password, …): XChaCha20-Poly1305 under one 32-byte key per
//! installation. The key is `TILLWIRE_SECRET_KEY` (base64) when set, else `DATA_DIR/secret.key`, generated on first
//! use with mode 0600. Several instances sharing one database must share the key (set the variable).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::config::Secret;

pub const KEY_VARIABLE: &str = "TILLWIRE_SECRET_KEY";
const KEY_FILE: &str = "secret.key";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("{origin}: not a base64 {KEY_LEN}-byte key")]
    BadKey { origin: String },
    #[error("{path}: {error}")]
    KeyFile {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot decrypt a stored secret: it was sealed with another key, or altered")]
    Open,
}

/// Seals and opens secrets with the installation's key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    pub fn new(key: [u8; KEY_LEN]) -> Self {
        SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// The key from [`KEY_VARIABLE`], else from (or generated into) `data_dir/secret.key`.
    pub fn load(data_dir: &Path) -> Result<Self, SecretBoxError> {
        Self::load_with(std::env::var(KEY_VARIABLE).ok().as_deref(), data_dir)
    }

    fn load_with(variable: Option<&str>, data_dir: &Path) -> Result<Self, SecretBoxError> {
        match variable.filter(|v| !v.trim().is_empty()) {
            Some(text) => decode_key(text, KEY_VARIABLE),
            None => Self::key_file(&data_dir.join(KEY_FILE)),
        }
    }

    fn key_file(path: &Path) -> Result<Self, SecretBoxError> {
        let failed = |error| SecretBoxError::KeyFile {
            path: path.to_owned(),
            error,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let key: [u8; KEY_LEN] = rand::random();
        // Written whole to a file of its own, then linked into place: the link fails when the key exists, so of
        // two writers (processes starting together, or two requests sealing the first secret) one key wins and
        // nobody ever reads a file still being written.
        let draft = path.with_extension(format!("{}.tmp", rand::random::<u32>()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&draft)
            .and_then(|mut file| {
                file.write_all(STANDARD.encode(key).as_bytes())?;
                file.sync_all()
            });
        let linked = written.and_then(|()| std::fs::hard_link(&draft, path));
        let _ = std::fs::remove_file(&draft);
        match linked {
            Ok(()) => Ok(SecretBox::new(key)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(failed)?;
                decode_key(&text, &path.display().to_string())
            }
            Err(error) => Err(failed(error)),
        }
    }

    /// `base64(nonce ‖ ciphertext ‖ tag)`, with a fresh random nonce each time.
    pub fn seal(&self, plain: &str) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), plain.as_bytes())
            .expect("XChaCha20-Poly1305 seals any message that fits in memory");
        STANDARD.encode([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, sealed: &str) -> Result<Secret, SecretBoxError> {
        let bytes = STANDARD
            .decode(sealed.trim())
            .map_err(|_| SecretBoxError::Open)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretBoxError::Open);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretBoxError::Open)?;
        let plain = self
            .cipher
            .decrypt(&XNonce::from(nonce), ciphertext)
            .map_err(|_| SecretBoxError::Open)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| SecretBoxError::Open)
    }
}

fn decode_key(text: &str, origin: &str) -> Result<SecretBox, SecretBoxError> {
    STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; KEY_LEN]>::try_from(bytes).ok())
        .map(SecretBox::new)
        .ok_or_else(|| SecretBoxError::BadKey {
            origin: origin.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let secret_box = SecretBox::new([7; KEY_LEN]);
        let (first, second) = (secret_box.seal("hunter2"), secret_box.seal("hunter2"));
        assert_ne!(first, second);
        assert!(!first.contains("hunter2"));
        assert_eq!(secret_box.open(&first).expect("opens").expose(), "hunter2");
        assert_eq!(secret_box.open(&second).expect("opens").expose(), "hunter2");
        assert_eq!(secret_box.seal("").len(), secret_box.seal("").len());
        assert_eq!(
            secret_box
                .open(&secret_box.seal(""))
                .expect("empty")
                .expose(),
            ""
        );
    }

    #[test]
    fn tampering_and_other_keys_are_refused() {
        let secret_box = SecretBox::new([7; KEY_LEN]);
        let sealed = STANDARD.decode(secret_box.seal("hunter2")).expect("base64");
        for at in [0, NONCE_LEN, sealed.len() - 1] {
            let mut altered = sealed.clone();
            altered[at] ^= 1;
            assert!(matches!(
                secret_box.open(&STANDARD.encode(&altered)),
                Err(SecretBoxError::Open)
            ));
        }
        let truncated = STANDARD.encode(&sealed[..sealed.len() - 1]);
        assert!(secret_box.open(&truncated).is_err());
        assert!(secret_box.open("not base64!").is_err());
        assert!(secret_box.open("").is_err());
        let other = SecretBox::new([8; KEY_LEN]);
        assert!(other.open(&STANDARD.encode(&sealed)).is_err());
    }

    #[test]
    fn the_key_file_is_generated_once_and_private() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let first = SecretBox::load_with(None, &data_dir).expect("generated");
        let path = data_dir.join(KEY_FILE);
        let mode = std::fs::metadata(&path)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = SecretBox::load_with(None, &data_dir).expect("read back");
        assert_eq!(
            again.open(&first.seal("kept")).expect("same key").expose(),
            "kept"
        );
    }

    #[test]
    fn writers_racing_for_the_first_key_all_get_the_one_that_won() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().expect("temp dir");
            let boxes: Vec<SecretBox> = std::thread::scope(|scope| {
                let racers: Vec<_> = (0..8)
                    .map(|_| scope.spawn(|| SecretBox::load_with(None, dir.path())))
                    .collect();
                racers
                    .into_iter()
                    .map(|racer| racer.join().expect("no panic").expect("a whole key"))
                    .collect()
            });
            let sealed = boxes[0].seal("one key");
            for other in &boxes {
                assert_eq!(
                    other.open(&sealed).expect("the same key").expose(),
                    "one key"
                );
            }
            let leftovers = std::fs::read_dir(dir.path()).expect("dir").count();
            assert_eq!(leftovers, 1, "only the key file stays");
        }
    }

    #[test]
    fn the_variable_wins_and_must_be_a_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = STANDARD.encode([9; KEY_LEN]);
        let from_variable =
            SecretBox::load_with(Some(&key), dir.path()).expect("from the variable");
        assert!(!dir.path().join(KEY_FILE).exists());
        let sealed = from_variable.seal("x");
        assert_eq!(
            SecretBox::new([9; KEY_LEN])
                .open(&sealed)
                .expect("that key")
                .expose(),
            "x"
        );
        let error = SecretBox::load_with(Some("c2hvcnQ="), dir.path())
            .err()
            .expect("too short")
            .to_string();
        assert!(error.contains(KEY_VARIABLE), "{error}");
        std::fs::write(dir.path().join(KEY_FILE), "garbage").expect("write");
        assert!(SecretBox::load_with(None, dir.path()).is_err());
    }
}
