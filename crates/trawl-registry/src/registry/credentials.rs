//! Credentials from Docker's client configuration, as `docker login` and skopeo keep them.
//!
//! `config.json` (see [docker login](https://docs.docker.com/reference/cli/docker/login/#credential-stores)):
//! `auths` maps a registry to `{"auth": base64("user:password")}`; `credHelpers` maps a
//! registry to a helper, `credsStore` names the default helper. A helper is the program
//! `docker-credential-<name>`, run as `get` with the registry on stdin, answering
//! `{"Username": …, "Secret": …}` (the
//! [credential helper protocol](https://github.com/docker/docker-credential-helpers#development)).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::RegistryError;
use crate::options::Credentials;

/// Largest `config.json` or helper answer read.
const MAX_CONFIG_SIZE: u64 = 1024 * 1024;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// Where Docker keeps its client configuration: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub(crate) fn default_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// The credentials Docker's configuration at `path` holds for `registry` (`HOST[:PORT]`),
/// `None` when it has none (or there is no configuration).
pub(crate) fn lookup(path: &Path, registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let config_error = |reason: String| RegistryError::DockerConfig {
        path: path.to_owned(),
        reason,
    };
    let file = match crate::file::open_regular(path) {
        Ok((file, _)) => file,
        Err(crate::file::OpenError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(config_error(e.to_string())),
    };
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| config_error(e.to_string()))?;
    if bytes.len() as u64 > MAX_CONFIG_SIZE {
        return Err(config_error(format!("larger than {MAX_CONFIG_SIZE} bytes")));
    }
    let config: DockerConfig =
        serde_json::from_slice(&bytes).map_err(|e| config_error(format!("invalid JSON: {e}")))?;

    let names = config_keys(registry);
    if let Some(helper) = names.iter().find_map(|n| config.cred_helpers.get(n)) {
        return run_helper(helper, registry);
    }
    let entry = config
        .auths
        .iter()
        .find(|(key, _)| names.contains(&normalize_key(key)))
        .map(|(_, entry)| entry);
    if let Some(entry) = entry
        && let Some(credentials) = from_entry(entry, registry, &config_error)?
    {
        return Ok(Some(credentials));
    }
    match &config.creds_store {
        Some(helper) if !helper.is_empty() => run_helper(helper, registry),
        _ => Ok(None),
    }
}

fn from_entry(
    entry: &AuthEntry,
    registry: &str,
    config_error: &dyn Fn(String) -> RegistryError,
) -> Result<Option<Credentials>, RegistryError> {
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| config_error(format!("auths entry for {registry}: auth is not base64")))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| config_error(format!("auths entry for {registry}: auth is not UTF-8")))?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            config_error(format!(
                "auths entry for {registry}: auth is not \"user:password\""
            ))
        })?;
        return Ok(Some(Credentials::new(username, password)));
    }
    if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials::new(username.clone(), password.clone())));
    }
    if entry.identitytoken.is_some() {
        return Err(config_error(format!(
            "auths entry for {registry} holds an OAuth identity token, which is not supported; \
             log in with a password or access token"
        )));
    }
    Ok(None)
}

/// The names a registry may have in `config.json` (Docker Hub has several).
fn config_keys(registry: &str) -> Vec<String> {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        ["docker.io", "index.docker.io", "registry-1.docker.io"]
            .map(str::to_owned)
            .to_vec()
    } else {
        vec![registry.to_owned()]
    }
}

/// `https://host:port/v1/` → `host:port`, as Docker matches `auths` keys.
fn normalize_key(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

/// Runs `docker-credential-<helper> get` for `registry`.
fn run_helper(helper: &str, registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let failed = |reason: String| RegistryError::CredentialHelper {
        helper: helper.to_owned(),
        registry: registry.to_owned(),
        reason,
    };
    if helper.contains(['/', '\\']) || helper.is_empty() {
        return Err(failed(
            "helper names may not contain path separators".to_owned(),
        ));
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // Docker passes the server as its helpers stored it: Docker Hub by its legacy URL.
        let server = if config_keys(registry).len() > 1 {
            "https://index.docker.io/v1/"
        } else {
            registry
        };
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| failed(format!("cannot write to {program}: {e}")))?;
    }
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout
            .take(MAX_CONFIG_SIZE)
            .read_to_end(&mut out)
            .map_err(|e| failed(format!("cannot read from {program}: {e}")))?;
    }
    let status = child
        .wait()
        .map_err(|e| failed(format!("waiting for {program}: {e}")))?;
    if !status.success() {
        // The protocol's answer for "nothing stored": anonymous access, not an error.
        if String::from_utf8_lossy(&out).contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(format!("exited with {status}")));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out)
        .map_err(|_| failed("answer is not {\"Username\", \"Secret\"} JSON".to_owned()))?;
    if answer.username == "<token>" {
        return Err(failed(
            "it holds an OAuth identity token, which is not supported".to_owned(),
        ));
    }
    Ok(Some(Credentials::new(answer.username, answer.secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_auths_entries() {
        // base64("alice:pa:ss")
        let (_dir, path) = config(
            r#"{"auths": {"https://reg.example:5000/v1/": {"auth": "YWxpY2U6cGE6c3M="},
                          "https://index.docker.io/v1/": {"username": "bob", "password": "pw"}}}"#,
        );
        let c = lookup(&path, "reg.example:5000").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "pa:ss")
        );
        let hub = lookup(&path, "docker.io").unwrap().unwrap();
        assert_eq!(hub.username, "bob");
        assert!(lookup(&path, "other.example").unwrap().is_none());
    }

    #[test]
    fn missing_file_means_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            lookup(&dir.path().join("nope.json"), "x.io")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn malformed_config_is_an_error_without_secrets() {
        let (_dir, path) = config(r#"{"auths": {"x.io": {"auth": "!!notbase64-SECRET"}}}"#);
        let e = lookup(&path, "x.io").unwrap_err();
        assert!(matches!(e, RegistryError::DockerConfig { .. }), "{e}");
        assert!(!e.to_string().contains("SECRET"), "{e}");
        let (_dir, path) = config("{");
        assert!(matches!(
            lookup(&path, "x.io"),
            Err(RegistryError::DockerConfig { .. })
        ));
    }

    #[test]
    fn missing_helper_is_an_error() {
        let (_dir, path) = config(r#"{"credHelpers": {"x.io": "trawl-definitely-not-installed"}}"#);
        let e = lookup(&path, "x.io").unwrap_err();
        assert!(
            matches!(e, RegistryError::CredentialHelper { ref helper, .. } if helper == "trawl-definitely-not-installed"),
            "{e}"
        );
    }
}
