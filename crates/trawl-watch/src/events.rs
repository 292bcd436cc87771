//! Docker Registry 2.0 notifications: the envelope a registry POSTs to each
//! endpoint of its `notifications:` configuration, and what `watch` makes of
//! each event.
//!
//! The format is distribution's `notifications` package
//! (<https://distribution.github.io/distribution/about/notifications/>): a
//! body of media type `application/vnd.docker.distribution.events.v1+json`
//! (`v2` from distribution 3 on, same fields) holding
//!
//! ```json
//! {"events": [{"id": "…", "timestamp": "2006-01-02T15:04:05.999Z", "action": "push",
//!   "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
//!              "digest": "sha256:…", "size": 708, "length": 708,
//!              "repository": "team/app", "tag": "1.2",
//!              "url": "https://registry.example/v2/team/app/manifests/sha256:…"},
//!   "request": {"id": "…", "addr": "…", "host": "registry.example", "method": "PUT",
//!               "useragent": "skopeo/1.9.3"},
//!   "actor": {"name": "alice"}, "source": {"addr": "…", "instanceID": "…"}}]}
//! ```
//!
//! Every field is the word of whoever made the request to the registry: the
//! host in `target.url` and `request.host` comes from the client's `Host:`
//! (or `X-Forwarded-Host:`) header. So an event is only taken when that host
//! is one of the registries `watch` is configured for, and the image is then
//! pulled from where the configuration says, never from a URL in the event.
//!
//! Actions are `push`, `pull`, `mount` and `delete`; targets are manifests and
//! blobs alike. Distribution sends each endpoint one event per envelope,
//! serially, and sends an envelope again (after `backoff` once `threshold`
//! attempts failed) until the endpoint answers 2xx or 3xx; so answering 503
//! makes it retry later, and nothing is lost while the endpoint is down as
//! long as the registry keeps running (its queue is in memory).

use serde::Deserialize;

/// Manifest media types worth a scan: images and indexes (Docker's and OCI's).
/// Everything else (layers, configs, schema 1 manifests) is ignored.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The `User-Agent` prefix of Trawl's own registry client. Pulls by it are
/// scans (this service's, or a CI gate's), not uses of the image, so they do
/// not count as pulls.
pub const OWN_USER_AGENT_PREFIX: &str = "trawl/";

/// A notification request body.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Envelope {
    /// The events; not necessarily related to each other.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One registry event (only the fields `watch` reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Event {
    /// Unique per event.
    pub id: String,
    /// When it happened (RFC 3339).
    pub timestamp: Option<String>,
    /// `push`, `pull`, `mount` or `delete`.
    pub action: String,
    /// What was pushed or pulled.
    pub target: Target,
    /// The HTTP request that caused it.
    pub request: RequestRecord,
}

/// An event's target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Target {
    /// The manifest's or blob's media type.
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// The repository (`team/app`).
    pub repository: String,
    /// A link to the content, built from the request's host.
    pub url: String,
    /// The tag, when a manifest was pushed or pulled by tag.
    pub tag: String,
}

/// The request that caused an event.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RequestRecord {
    /// The registry's host as the client named it (`Host` header).
    pub host: String,
    /// The client's `User-Agent`.
    pub useragent: String,
}

/// Whether a manifest was pushed (or imported) or pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Pushed: scan it.
    Push,
    /// Pulled: the image is in use; record when.
    Pull,
}

/// A push or pull of an image manifest, checked and ready to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEvent {
    /// Push or pull.
    pub kind: Kind,
    /// The manifest digest (`sha256:` and 64 hex digits).
    pub digest: String,
    /// The registry to pull it from (`HOST[:PORT]`).
    pub registry: String,
    /// The repository it was pushed to or pulled from.
    pub repository: String,
    /// The tag, when pushed or pulled by tag.
    pub tag: Option<String>,
    /// The manifest media type.
    pub media_type: String,
    /// When it happened (Unix seconds): the event's timestamp, or the time
    /// of arrival when it has none; never later than the arrival.
    pub at: i64,
}

/// What a registry deleted from a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// A manifest (by digest): it and every tag naming it are gone from the
    /// repository. Distribution sends this, then one [`Deleted::Tag`] per tag.
    Manifest(String),
    /// A tag; the manifest it named may stay (distribution 3 deletes tags alone).
    Tag(String),
}

/// A deletion in a repository, checked and ready to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// The repository.
    pub repository: String,
    /// What went.
    pub deleted: Deleted,
}

/// An event worth recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A push or pull of an image manifest.
    Image(ImageEvent),
    /// A manifest or tag deleted.
    Delete(Deletion),
}

/// What to do with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    /// Record it.
    Record(Recorded),
    /// Nothing to do, and why.
    Ignored(String),
    /// It names a registry host that is not configured (the host, as
    /// named): refused, and nothing is pulled.
    UnknownRegistry(String),
}

/// Why an event's registry host is not taken.
enum HostRefused {
    /// There is none to read.
    Malformed(&'static str),
    /// It is not configured.
    Unknown(String),
}

impl From<HostRefused> for Classified {
    fn from(refused: HostRefused) -> Self {
        match refused {
            HostRefused::Malformed(why) => Classified::Ignored(why.into()),
            HostRefused::Unknown(host) => Classified::UnknownRegistry(host),
        }
    }
}

impl Event {
    /// Checks the event and says what it means for `watch`. `registries` are
    /// the configured registry hosts (`HOST[:PORT]`, compared without regard
    /// to case); an image event names the one it was recorded under. `now`
    /// is the time of arrival.
    pub fn classify(&self, registries: &[String], now: i64) -> Classified {
        let kind = match self.action.as_str() {
            "push" => Kind::Push,
            "pull" => Kind::Pull,
            "delete" => {
                return match self.registry(registries) {
                    Ok(_) => self.classify_delete(),
                    Err(refused) => refused.into(),
                };
            }
            other => return Classified::Ignored(format!("action {other:?}")),
        };
        let target = &self.target;
        if !MANIFEST_MEDIA_TYPES.contains(&target.media_type.as_str()) {
            return Classified::Ignored(format!("media type {:?}", target.media_type));
        }
        if kind == Kind::Pull && self.request.useragent.starts_with(OWN_USER_AGENT_PREFIX) {
            return Classified::Ignored(format!("pulled by {:?}", self.request.useragent));
        }
        if !is_sha256_digest(&target.digest) {
            return Classified::Ignored(format!("digest {:?}", target.digest));
        }
        if !is_repository(&target.repository) {
            return Classified::Ignored(format!("repository {:?}", target.repository));
        }
        let tag = match target.tag.as_str() {
            "" => None,
            t if is_tag(t) => Some(t.to_string()),
            t => return Classified::Ignored(format!("tag {t:?}")),
        };
        let registry = match self.registry(registries) {
            Ok(registry) => registry,
            Err(refused) => return refused.into(),
        };
        let at = self
            .timestamp
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(now, |t| t.timestamp().min(now));
        Classified::Record(Recorded::Image(ImageEvent {
            kind,
            digest: target.digest.clone(),
            registry,
            repository: target.repository.clone(),
            tag,
            media_type: target.media_type.clone(),
            at,
        }))
    }

    /// The configured registry the event names: the host of `target.url`,
    /// or without one `request.host`. Any other host is refused.
    fn registry(&self, registries: &[String]) -> Result<String, HostRefused> {
        let host = if self.target.url.is_empty() {
            non_empty(&self.request.host)
        } else {
            match url_host(&self.target.url) {
                Some(host) => Some(host),
                None => return Err(HostRefused::Malformed("target URL without a host")),
            }
        };
        let Some(host) = host else {
            return Err(HostRefused::Malformed("no registry host"));
        };
        registries
            .iter()
            .find(|r| r.eq_ignore_ascii_case(host))
            .cloned()
            .ok_or_else(|| HostRefused::Unknown(host.to_string()))
    }

    /// A delete names its repository and either a digest (a manifest, or a
    /// blob: the two look alike, and a blob's digest never names an image
    /// the store knows) or a tag. It carries no media type.
    fn classify_delete(&self) -> Classified {
        let target = &self.target;
        if !is_repository(&target.repository) {
            return Classified::Ignored(format!("repository {:?}", target.repository));
        }
        let deleted = match (target.digest.as_str(), target.tag.as_str()) {
            ("", "") => return Classified::Ignored("a delete of nothing".into()),
            ("", tag) if is_tag(tag) => Deleted::Tag(tag.to_string()),
            ("", tag) => return Classified::Ignored(format!("tag {tag:?}")),
            (digest, _) if is_sha256_digest(digest) => Deleted::Manifest(digest.to_string()),
            (digest, _) => return Classified::Ignored(format!("digest {digest:?}")),
        };
        Classified::Record(Recorded::Delete(Deletion {
            repository: target.repository.clone(),
            deleted,
        }))
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The `HOST[:PORT]` of an `http(s)://` URL (scheme case-insensitive),
/// without user info.
fn url_host(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")?;
    if !matches!(
        url[..scheme_end].to_ascii_lowercase().as_str(),
        "http" | "https"
    ) {
        return None;
    }
    let rest = &url[scheme_end + 3..];
    let authority = rest.split(['/', '?', '#']).next()?;
    non_empty(authority.rsplit('@').next()?)
}

/// `sha256:` and 64 lower-case hex digits (Trawl verifies sha256 only).
pub fn is_sha256_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// A repository path by the distribution reference grammar: `/`-separated
/// components of lower-case letters and digits, joined by `.`, `_`, `__` or
/// runs of `-`.
fn is_repository(s: &str) -> bool {
    s.len() <= 255
        && s.split('/').all(|component| {
            let b = component.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
        })
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// A host name or address with an optional port (`[::1]:5000` included).
pub fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registries the tests configure: the envelope's URL host and
    /// request host.
    fn known() -> Vec<String> {
        vec!["127.0.0.1:5000".into(), "Registry.Internal:5000".into()]
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// An envelope as distribution 2.8 sends it (pretty-printed, one event).
    fn envelope(action: &str, media_type: &str, tag: &str, agent: &str) -> Envelope {
        let body = format!(
            r#"{{
   "events": [
      {{
         "id": "0c1f3b4e-2a3d-4f6e-9a1b-5c6d7e8f9a0b",
         "timestamp": "2026-11-20T10:11:12.123456789+01:00",
         "action": "{action}",
         "target": {{
            "mediaType": "{media_type}",
            "size": 1022,
            "digest": "{DIGEST}",
            "length": 1022,
            "repository": "team/app",
            "url": "http://127.0.0.1:5000/v2/team/app/manifests/{DIGEST}",
            "tag": "{tag}"
         }},
         "request": {{
            "id": "b7a6c5d4-e3f2-4a1b-8c9d-0e1f2a3b4c5d",
            "addr": "127.0.0.1:40000",
            "host": "registry.internal:5000",
            "method": "PUT",
            "useragent": "{agent}"
         }},
         "actor": {{"name": "alice"}},
         "source": {{"addr": "node-1:5000", "instanceID": "e5b2f0c4"}}
      }}
   ]
}}"#
        );
        serde_json::from_str(&body).unwrap()
    }

    #[test]
    fn a_manifest_push_is_an_image_event() {
        let e = envelope("push", MANIFEST_MEDIA_TYPES[0], "1.2", "skopeo/1.9.3");
        let Classified::Record(Recorded::Image(ev)) = e.events[0].classify(&known(), 2_000_000_000)
        else {
            panic!("not an image event");
        };
        assert_eq!(
            ev,
            ImageEvent {
                kind: Kind::Push,
                digest: DIGEST.into(),
                registry: "127.0.0.1:5000".into(),
                repository: "team/app".into(),
                tag: Some("1.2".into()),
                media_type: MANIFEST_MEDIA_TYPES[0].into(),
                // 2026-11-20T09:11:12Z
                at: 1_795_165_872,
            }
        );
        // The timestamp never lies in the future of the arrival.
        let Classified::Record(Recorded::Image(ev)) = e.events[0].classify(&known(), 1_000) else {
            panic!("not an image event");
        };
        assert_eq!(ev.at, 1_000);
    }

    #[test]
    fn blobs_other_actions_and_own_pulls_are_ignored() {
        let layer = "application/vnd.oci.image.layer.v1.tar+gzip";
        for e in [
            envelope("push", layer, "", "skopeo/1.9.3"),
            envelope("mount", MANIFEST_MEDIA_TYPES[2], "", "skopeo/1.9.3"),
            envelope("pull", MANIFEST_MEDIA_TYPES[3], "", "trawl/0.1.0"),
        ] {
            assert!(
                matches!(e.events[0].classify(&known(), 0), Classified::Ignored(_)),
                "{e:?}"
            );
        }
        // A push by Trawl (an import) is still a push.
        let e = envelope("push", MANIFEST_MEDIA_TYPES[3], "", "trawl/0.1.0");
        assert!(matches!(
            e.events[0].classify(&known(), 0),
            Classified::Record(Recorded::Image(ImageEvent { tag: None, .. }))
        ));
    }

    #[test]
    fn malformed_fields_are_ignored_not_trusted() {
        let mut e = envelope("pull", MANIFEST_MEDIA_TYPES[0], "", "docker/27");
        e.events[0].target.digest = "sha256:../../etc".into();
        assert!(matches!(
            e.events[0].classify(&known(), 0),
            Classified::Ignored(_)
        ));
        for bad in ["Team/app", "team//app", "-team/app", "team/app/", ""] {
            let mut e = envelope("push", MANIFEST_MEDIA_TYPES[0], "", "docker/27");
            e.events[0].target.repository = bad.into();
            assert!(
                matches!(e.events[0].classify(&known(), 0), Classified::Ignored(_)),
                "{bad}"
            );
        }
        let mut e = envelope("push", MANIFEST_MEDIA_TYPES[0], ".bad", "docker/27");
        assert!(matches!(
            e.events[0].classify(&known(), 0),
            Classified::Ignored(_)
        ));
        // No URL: the request's host, spelled as configured.
        e.events[0].target.tag.clear();
        e.events[0].target.url.clear();
        match e.events[0].classify(&known(), 0) {
            Classified::Record(Recorded::Image(ev)) => {
                assert_eq!(ev.registry, "Registry.Internal:5000")
            }
            other => panic!("{other:?}"),
        }
        e.events[0].target.url = "not a url".into();
        assert!(matches!(
            e.events[0].classify(&known(), 0),
            Classified::Ignored(_)
        ));
        // Missing fields and an unparsable time are tolerated.
        let e: Envelope = serde_json::from_str(r#"{"events":[{"action":"push"}]}"#).unwrap();
        assert!(matches!(
            e.events[0].classify(&known(), 0),
            Classified::Ignored(_)
        ));
    }

    /// The host comes from the client's `Host:` (or `X-Forwarded-Host:`)
    /// header: any host not configured is refused, whichever field names it,
    /// deletes included.
    #[test]
    fn unknown_registries_are_refused() {
        let push = envelope("push", MANIFEST_MEDIA_TYPES[0], "1", "docker/27");
        let mut by_url = push.events[0].clone();
        by_url.target.url = format!("HTTPS://attacker.example/v2/team/app/manifests/{DIGEST}");
        assert_eq!(
            by_url.classify(&known(), 0),
            Classified::UnknownRegistry("attacker.example".into())
        );
        let mut by_host = push.events[0].clone();
        by_host.target.url.clear();
        by_host.request.host = "evil host/\x1b[31m".into();
        assert_eq!(
            by_host.classify(&known(), 0),
            Classified::UnknownRegistry("evil host/\x1b[31m".into())
        );
        // The URL decides when there is one: the request's host alone does not.
        let mut both = push.events[0].clone();
        both.request.host = "attacker.example".into();
        assert!(matches!(
            both.classify(&known(), 0),
            Classified::Record(Recorded::Image(ImageEvent { ref registry, .. }))
                if registry == "127.0.0.1:5000"
        ));
        assert!(matches!(
            push.events[0].classify(&[], 0),
            Classified::UnknownRegistry(_)
        ));
        let mut delete = envelope("delete", "", "", "docker/27").events[0].clone();
        delete.target.url.clear();
        delete.request.host = "attacker.example".into();
        assert!(matches!(
            delete.classify(&known(), 0),
            Classified::UnknownRegistry(_)
        ));
        // A blob is ignored before its host matters.
        let blob = envelope("push", "application/octet-stream", "", "docker/27");
        let mut blob = blob.events[0].clone();
        blob.target.url = "http://attacker.example/v2/x".into();
        assert!(matches!(blob.classify(&known(), 0), Classified::Ignored(_)));
    }

    /// Deletes as distribution 2.8 sends them for `skopeo delete REPO:TAG`:
    /// the manifest by digest, then each tag that named it.
    #[test]
    fn deletes_name_a_manifest_or_a_tag() {
        let delete = |target: &str| -> Classified {
            let body = format!(
                r#"{{"events": [{{"id": "89ee855b", "timestamp": "2026-11-23T12:09:38.69220533Z",
                    "action": "delete", "target": {target},
                    "request": {{"id": "3dba184d", "addr": "127.0.0.1:56762",
                                 "host": "127.0.0.1:18998", "method": "DELETE",
                                 "useragent": "skopeo/1.9.3"}},
                    "actor": {{}}, "source": {{"addr": "vm:18998", "instanceID": "fcddc349"}}}}]}}"#
            );
            let e: Envelope = serde_json::from_str(&body).unwrap();
            e.events[0].classify(&["127.0.0.1:18998".to_string()], 0)
        };
        let deletion = |deleted| {
            Classified::Record(Recorded::Delete(Deletion {
                repository: "a/b".into(),
                deleted,
            }))
        };
        assert_eq!(
            delete(&format!(r#"{{"digest": "{DIGEST}", "repository": "a/b"}}"#)),
            deletion(Deleted::Manifest(DIGEST.into()))
        );
        assert_eq!(
            delete(r#"{"repository": "a/b", "tag": "one"}"#),
            deletion(Deleted::Tag("one".into()))
        );
        for bad in [
            r#"{"repository": "a/b"}"#,
            r#"{"repository": "A/b", "tag": "one"}"#,
            r#"{"repository": "a/b", "tag": ".one"}"#,
            r#"{"repository": "a/b", "digest": "sha256:../x"}"#,
        ] {
            assert!(matches!(delete(bad), Classified::Ignored(_)), "{bad}");
        }
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://u:p@r.example:5000/v2/x"),
            Some("r.example:5000")
        );
        assert_eq!(url_host("http://[::1]:5000/v2/"), Some("[::1]:5000"));
        assert_eq!(url_host("ftp://r/x"), None);
        assert_eq!(url_host("http:///v2"), None);
    }
}
