//! HTTP to registries: scheme choice, authentication, retries and redirects.
//!
//! Authentication follows the [distribution token protocol](https://distribution.github.io/distribution/spec/auth/token/):
//! the first request to a host is `GET /v2/`, whose `401` names the scheme. `Basic`
//! challenges get the host's credentials; `Bearer realm=…,service=…` ones a token fetched
//! from the realm for each repository scope (with the credentials, if any), cached, and
//! fetched again once when the registry answers `401` to it.
//!
//! Credentials and tokens are only attached to requests to the registry's own origin (and
//! credentials to the token realm it names). Redirects — blob downloads are often sent to
//! storage elsewhere — are followed by hand so that nothing is attached when the origin
//! changes. Nothing secret is logged.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{self, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;

use crate::RegistryError;
use crate::options::{Credentials, RegistryOptions};
use crate::registry::credentials;
use crate::registry::limits::{ClockedReader, TransferClock, redact_url, redact_urls_in};

/// Redirect hops followed per request.
const MAX_REDIRECTS: u32 = 8;
/// Longest wait honoured from `Retry-After`, and the cap of the exponential backoff.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Largest CA file read.
const MAX_CA_FILE: u64 = 16 * 1024 * 1024;
/// Largest token response or error body read.
const MAX_SMALL_BODY: u64 = 1024 * 1024;

/// One request, relative to a registry host.
pub(crate) struct Request<'a> {
    /// The image or repository it is for (error messages).
    pub(crate) reference: &'a str,
    /// The registry as named in references (credential lookup).
    pub(crate) registry: &'a str,
    /// The host the API is served from.
    pub(crate) host: &'a str,
    /// The token scope, e.g. `repository:library/debian:pull`.
    pub(crate) scope: &'a str,
    pub(crate) method: Method,
    /// Path and query, e.g. `/v2/library/debian/manifests/12`, or an absolute URL on the
    /// registry (from a `Link` header).
    pub(crate) path: &'a str,
    pub(crate) headers: Vec<(header::HeaderName, String)>,
}

/// How a host wants to be authenticated, from its `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Anonymous,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

struct HostState {
    base: Url,
    challenge: Challenge,
    credentials: Option<Credentials>,
    /// Bearer tokens by scope.
    tokens: Mutex<HashMap<String, String>>,
}

/// The shared HTTP side of a [`crate::RegistryClient`]; used from many threads at once.
pub(crate) struct Transport {
    http: Client,
    pub(crate) options: RegistryOptions,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
}

impl Transport {
    pub(crate) fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        let setup = |reason: String| RegistryError::ClientSetup { reason };
        let mut builder = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(options.connect_timeout)
            .timeout(options.read_timeout)
            .user_agent(concat!("trawl/", env!("CARGO_PKG_VERSION")));
        for path in &options.ca_files {
            let cannot_read = |e: &dyn std::fmt::Display| {
                setup(format!("cannot read CA file {}: {e}", path.display()))
            };
            let (file, _) = crate::file::open_regular(path).map_err(|e| cannot_read(&e))?;
            let mut pem = Vec::new();
            file.take(MAX_CA_FILE + 1)
                .read_to_end(&mut pem)
                .map_err(|e| cannot_read(&e))?;
            if pem.len() as u64 > MAX_CA_FILE {
                return Err(setup(format!(
                    "CA file {} is larger than {MAX_CA_FILE} bytes",
                    path.display()
                )));
            }
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| setup(format!("invalid CA file {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(setup(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| setup(error_chain(&e)))?;
        Ok(Self {
            http,
            options,
            hosts: Mutex::new(HashMap::new()),
        })
    }

    /// `https://host/` or `http://host/`, as the first contact with the host decided.
    pub(crate) fn base_url(
        &self,
        reference: &str,
        registry: &str,
        host: &str,
    ) -> Result<Url, RegistryError> {
        Ok(self.host_state(reference, registry, host)?.base.clone())
    }

    /// The credentials used for `host`, if it asked for any.
    pub(crate) fn credentials(
        &self,
        reference: &str,
        registry: &str,
        host: &str,
    ) -> Result<Option<Credentials>, RegistryError> {
        Ok(self
            .host_state(reference, registry, host)?
            .credentials
            .clone())
    }

    /// Sends `request`, authenticating, retrying and following redirects; returns the first
    /// response that is not a redirect, an auth challenge or a retryable failure.
    pub(crate) fn send(&self, request: &Request<'_>) -> Result<Response, RegistryError> {
        let state = self.host_state(request.reference, request.registry, request.host)?;
        let mut url = state.base.join(request.path).map_err(|e| {
            self.request_error(request, request.path, None, 0, format!("invalid URL: {e}"))
        })?;
        let mut attempts = 0;
        let mut redirects = 0;
        let mut refreshed = false;
        loop {
            attempts += 1;
            let own_origin = url.origin() == state.base.origin();
            let mut builder = self.http.request(request.method.clone(), url.clone());
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            if own_origin {
                builder = self.authorize(builder, request, &state)?;
            }
            tracing::debug!(method = %request.method, url = %redact_url(&url), attempt = attempts, "registry request");
            let response = match builder.send() {
                Ok(response) => response,
                Err(e) if attempts < self.options.max_attempts && is_transient(&e) => {
                    tracing::debug!(url = %redact_url(&url), error = %error_chain(&e), "retrying");
                    std::thread::sleep(self.backoff(attempts));
                    continue;
                }
                Err(e) => {
                    return Err(self.request_error(
                        request,
                        url.as_str(),
                        None,
                        attempts,
                        error_chain(&e),
                    ));
                }
            };
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                redirects += 1;
                attempts -= 1;
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok());
                match location {
                    Some(next) if redirects <= MAX_REDIRECTS => {
                        self.check_scheme(request, &next)?;
                        url = next;
                        continue;
                    }
                    Some(_) => {
                        return Err(self.request_error(
                            request,
                            url.as_str(),
                            Some(status),
                            attempts + 1,
                            format!("more than {MAX_REDIRECTS} redirects"),
                        ));
                    }
                    None => {
                        return Err(self.request_error(
                            request,
                            url.as_str(),
                            Some(status),
                            attempts + 1,
                            "redirect without a valid Location".to_owned(),
                        ));
                    }
                }
            }
            if status == StatusCode::UNAUTHORIZED && own_origin {
                let challenge = response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge)
                    .unwrap_or_else(|| state.challenge.clone());
                if let (Challenge::Bearer { .. }, false) = (&challenge, refreshed) {
                    // The token may have expired or lack this scope: fetch a fresh one, once.
                    refreshed = true;
                    attempts -= 1;
                    let token = self.fetch_token(request, &state, &challenge)?;
                    lock(&state.tokens).insert(request.scope.to_owned(), token);
                    continue;
                }
                return Err(self.unauthorized(request, &state, &challenge, refreshed, response));
            }
            if status == StatusCode::FORBIDDEN {
                let message = self.error_message(response);
                return Err(RegistryError::Unauthorized {
                    reference: request.reference.to_owned(),
                    registry: request.host.to_owned(),
                    reason: format!("forbidden ({}): {message}", self.who(&state)),
                });
            }
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                if attempts < self.options.max_attempts {
                    let wait = retry_after(&response).unwrap_or_else(|| self.backoff(attempts));
                    tracing::debug!(url = %redact_url(&url), %status, ?wait, "retrying");
                    drop(response);
                    std::thread::sleep(wait);
                    continue;
                }
                let message = self.error_message(response);
                return Err(self.request_error(
                    request,
                    url.as_str(),
                    Some(status),
                    attempts,
                    message,
                ));
            }
            return Ok(response);
        }
    }

    /// An error for a response that is neither success nor something [`Transport::send`]
    /// handles (e.g. 404, 400), with the registry's message.
    pub(crate) fn status_error(&self, request: &Request<'_>, response: Response) -> RegistryError {
        let status = response.status();
        let url = redact_url(response.url());
        let message = self.error_message(response);
        if status == StatusCode::NOT_FOUND {
            return RegistryError::NotFound {
                reference: request.reference.to_owned(),
                reason: message,
            };
        }
        self.request_error(request, &url, Some(status), 1, message)
    }

    fn unauthorized(
        &self,
        request: &Request<'_>,
        state: &HostState,
        challenge: &Challenge,
        refreshed: bool,
        response: Response,
    ) -> RegistryError {
        let message = self.error_message(response);
        let reason = match challenge {
            Challenge::Bearer { .. } if refreshed => format!(
                "the registry rejected a freshly issued token for {} ({}): {message}",
                request.scope,
                self.who(state)
            ),
            _ if state.credentials.is_none() => format!(
                "the registry requires credentials and none are configured for {} \
                 (docker login, or pass them explicitly): {message}",
                request.registry
            ),
            _ => format!("credentials rejected ({}): {message}", self.who(state)),
        };
        RegistryError::Unauthorized {
            reference: request.reference.to_owned(),
            registry: request.host.to_owned(),
            reason,
        }
    }

    fn who(&self, state: &HostState) -> String {
        match &state.credentials {
            Some(c) => format!("as user {:?}", c.username),
            None => "anonymously".to_owned(),
        }
    }

    /// Adds the `Authorization` a request to the registry's own origin needs.
    fn authorize(
        &self,
        builder: reqwest::blocking::RequestBuilder,
        request: &Request<'_>,
        state: &HostState,
    ) -> Result<reqwest::blocking::RequestBuilder, RegistryError> {
        match &state.challenge {
            Challenge::Anonymous => Ok(builder),
            Challenge::Basic => Ok(match &state.credentials {
                Some(c) => builder.basic_auth(&c.username, Some(&c.password)),
                None => builder,
            }),
            challenge @ Challenge::Bearer { .. } => {
                let cached = lock(&state.tokens).get(request.scope).cloned();
                let token = match cached {
                    Some(token) => token,
                    None => {
                        let token = self.fetch_token(request, state, challenge)?;
                        lock(&state.tokens).insert(request.scope.to_owned(), token.clone());
                        token
                    }
                };
                Ok(builder.bearer_auth(token))
            }
        }
    }

    /// Asks the challenge's realm for a token for the request's scope.
    fn fetch_token(
        &self,
        request: &Request<'_>,
        state: &HostState,
        challenge: &Challenge,
    ) -> Result<String, RegistryError> {
        let Challenge::Bearer {
            realm,
            service,
            scope,
        } = challenge
        else {
            return Err(RegistryError::Unauthorized {
                reference: request.reference.to_owned(),
                registry: request.host.to_owned(),
                reason: "token requested without a Bearer challenge".to_owned(),
            });
        };
        let denied = |registry: &str, reason: String| RegistryError::Unauthorized {
            reference: request.reference.to_owned(),
            registry: registry.to_owned(),
            reason,
        };
        let mut url = Url::parse(realm)
            .map_err(|e| denied(request.host, format!("invalid token realm {realm:?}: {e}")))?;
        self.check_scheme(request, &url)?;
        let realm_host = host_port(&url);
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            // Our scope, plus the one the registry named if it differs (e.g. catalog access).
            query.append_pair("scope", request.scope);
            if let Some(scope) = scope.as_deref().filter(|s| *s != request.scope) {
                query.append_pair("scope", scope);
            }
        }
        let mut attempts = 0;
        let response = loop {
            attempts += 1;
            let mut builder = self.http.get(url.clone());
            if let Some(c) = &state.credentials {
                builder = builder.basic_auth(&c.username, Some(&c.password));
            }
            match builder.send() {
                Ok(r) if r.status().is_server_error() && attempts < self.options.max_attempts => {
                    std::thread::sleep(self.backoff(attempts));
                }
                Ok(r) => break r,
                Err(e) if attempts < self.options.max_attempts && is_transient(&e) => {
                    std::thread::sleep(self.backoff(attempts));
                }
                Err(e) => {
                    return Err(self.request_error(
                        request,
                        realm,
                        None,
                        attempts,
                        format!("token service: {}", error_chain(&e)),
                    ));
                }
            }
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let reason = match &state.credentials {
                None => format!(
                    "the token service requires credentials and none are configured for {}",
                    request.registry
                ),
                Some(c) => format!(
                    "the token service rejected the credentials of user {:?}",
                    c.username
                ),
            };
            return Err(denied(&realm_host, reason));
        }
        if !status.is_success() {
            let message = self.error_message(response);
            return Err(self.request_error(
                request,
                realm,
                Some(status),
                attempts,
                format!("token service: {message}"),
            ));
        }
        let bytes =
            self.read_small(response)
                .map_err(|e| match RegistryError::take_from_io(e) {
                    Ok(limit) => limit,
                    Err(e) => denied(&realm_host, format!("reading token: {e}")),
                })?;
        #[derive(Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|e| denied(&realm_host, format!("token response is not JSON: {e}")))?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| denied(&realm_host, "token response holds no token".to_owned()))
    }

    /// Plain HTTP only to loopback and allowed hosts.
    fn check_scheme(&self, request: &Request<'_>, url: &Url) -> Result<(), RegistryError> {
        let host = host_port(url);
        if url.scheme() == "https"
            || (url.scheme() == "http" && self.options.allows_plain_http(&host))
        {
            return Ok(());
        }
        Err(RegistryError::InsecureTransport {
            reference: request.reference.to_owned(),
            host,
            url: redact_url(url),
        })
    }

    /// The state of `host`, contacting it first if this is the first request to it.
    fn host_state(
        &self,
        reference: &str,
        registry: &str,
        host: &str,
    ) -> Result<Arc<HostState>, RegistryError> {
        // Held across the first contact so that parallel layer threads ping only once.
        let mut hosts = lock(&self.hosts);
        if let Some(state) = hosts.get(host) {
            return Ok(state.clone());
        }
        let state = Arc::new(self.contact(reference, registry, host)?);
        hosts.insert(host.to_owned(), state.clone());
        Ok(state)
    }

    /// `GET /v2/` over HTTPS, or plain HTTP where allowed and TLS fails; learns the challenge.
    fn contact(
        &self,
        reference: &str,
        registry: &str,
        host: &str,
    ) -> Result<HostState, RegistryError> {
        let mut schemes = vec!["https"];
        if self.options.allows_plain_http(host) {
            schemes.push("http");
        }
        let mut first_error = None;
        for scheme in schemes {
            let base = Url::parse(&format!("{scheme}://{host}/")).map_err(|e| {
                RegistryError::InvalidReference {
                    input: reference.to_owned(),
                    reason: format!("invalid registry host {host:?}: {e}"),
                }
            })?;
            let ping = base
                .join("/v2/")
                .map_err(|e| RegistryError::InvalidReference {
                    input: reference.to_owned(),
                    reason: format!("invalid registry host {host:?}: {e}"),
                })?;
            let mut attempts = 0;
            let result = loop {
                attempts += 1;
                match self.http.get(ping.clone()).send() {
                    Ok(r)
                        if (r.status().is_server_error()
                            || r.status() == StatusCode::TOO_MANY_REQUESTS)
                            && attempts < self.options.max_attempts =>
                    {
                        let wait = retry_after(&r).unwrap_or_else(|| self.backoff(attempts));
                        std::thread::sleep(wait);
                    }
                    other => break other,
                }
            };
            let response = match result {
                Ok(response) => response,
                Err(e) => {
                    tracing::debug!(%ping, error = %error_chain(&e), "registry not reachable this way");
                    first_error.get_or_insert((ping.to_string(), error_chain(&e)));
                    continue;
                }
            };
            let status = response.status();
            let challenge = if status == StatusCode::UNAUTHORIZED {
                response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge)
                    .unwrap_or(Challenge::Basic)
            } else if status.is_success() || status == StatusCode::NOT_FOUND {
                Challenge::Anonymous
            } else {
                first_error.get_or_insert((ping.to_string(), format!("HTTP {status}")));
                continue;
            };
            let credentials = match challenge {
                Challenge::Anonymous => None,
                _ => self.lookup_credentials(registry)?,
            };
            tracing::debug!(%host, scheme, ?challenge, has_credentials = credentials.is_some(), "registry contacted");
            return Ok(HostState {
                base,
                challenge,
                credentials,
                tokens: Mutex::new(HashMap::new()),
            });
        }
        let (url, reason) = first_error.unwrap_or_default();
        Err(RegistryError::Request {
            reference: reference.to_owned(),
            method: "GET".to_owned(),
            url,
            status: None,
            attempts: 1,
            reason,
        })
    }

    fn lookup_credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        if let Some(c) = self.options.credentials.get(registry) {
            return Ok(Some(c.clone()));
        }
        let path = self
            .options
            .docker_config
            .clone()
            .or_else(credentials::default_config_path);
        match path {
            Some(path) => credentials::lookup(&path, registry),
            None => Ok(None),
        }
    }

    /// The registry's error message from `response`: see [`error_message_with`].
    pub(crate) fn error_message(&self, response: Response) -> String {
        error_message_with(self, response)
    }

    /// A small body (token response, error message) whole, at most [`MAX_SMALL_BODY`]
    /// bytes, under the transfer deadline and minimum throughput.
    pub(crate) fn read_small(&self, response: Response) -> std::io::Result<Vec<u8>> {
        let what = format!("response body of {}", redact_url(response.url()));
        let mut reader = ClockedReader {
            inner: response.take(MAX_SMALL_BODY),
            clock: TransferClock::start(&self.options, what),
        };
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(10);
        self.options
            .retry_base_delay
            .saturating_mul(factor)
            .min(MAX_BACKOFF)
    }

    pub(crate) fn request_error(
        &self,
        request: &Request<'_>,
        url: &str,
        status: Option<StatusCode>,
        attempts: u32,
        reason: String,
    ) -> RegistryError {
        RegistryError::Request {
            reference: request.reference.to_owned(),
            method: request.method.to_string(),
            url: redact_url_text(url),
            status: status.map(|s| s.as_u16()),
            attempts,
            reason,
        }
    }
}

/// Parses a `WWW-Authenticate` value: `Basic realm=…` or `Bearer realm=…,service=…,scope=…`.
fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, params) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(params);
    let realm = params.get("realm")?.clone();
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
        scope: params.get("scope").cloned(),
    })
}

/// `key="value", key=value` pairs; quoted values may hold commas and `\"`.
fn parse_params(input: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    params
}

/// `Retry-After` in seconds (the HTTP-date form falls back to our backoff), capped.
fn retry_after(response: &Response) -> Option<Duration> {
    let value: &HeaderValue = response.headers().get(header::RETRY_AFTER)?;
    let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// Connection-level failures worth another try (not TLS or URL errors, which repeat).
fn is_transient(error: &reqwest::Error) -> bool {
    if error.is_builder() || error.is_redirect() || error.is_decode() {
        return false;
    }
    let chain = error_chain(error).to_ascii_lowercase();
    !(chain.contains("certificate") || chain.contains("tls") || chain.contains("handshake"))
}

/// An error and its sources, `: `-joined (reqwest's `Display` hides the cause).
///
/// URLs in it are redacted (see [`redact_urls_in`]): reqwest quotes the URL it failed on.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    redact_urls_in(&text)
}

/// The registry's error message: the first `errors[].message` of its JSON body, else the
/// status line.
pub(crate) fn error_message_with(transport: &Transport, response: Response) -> String {
    let status = response.status();
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        code: Option<String>,
        message: Option<String>,
    }
    let body = transport.read_small(response).unwrap_or_default();
    let detail = serde_json::from_slice::<Errors>(&body)
        .ok()
        .and_then(|e| e.errors.into_iter().next())
        .map(|e| match (e.code, e.message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (code, message) => code.or(message).unwrap_or_default(),
        });
    match detail {
        Some(detail) if !detail.is_empty() => format!("HTTP {status}: {detail}"),
        _ => format!("HTTP {status}"),
    }
}

/// `url` (absolute, or a path relative to the registry) redacted for messages: see
/// [`redact_url`]; a relative one loses its query.
pub(crate) fn redact_url_text(url: &str) -> String {
    match Url::parse(url) {
        Ok(url) => redact_url(&url),
        Err(_) => match url.split_once('?') {
            Some((path, _)) => format!("{path}?<redacted>"),
            None => url.to_owned(),
        },
    }
}

/// `host[:port]` of a URL, as hosts are named in references.
fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere never leaves these maps half-updated; keep using them.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge("bearer realm=http://127.0.0.1:1/t"),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: None,
                scope: None,
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }
}
