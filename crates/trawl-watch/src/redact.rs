//! Secrets out of messages: what the service logs, stores and serves has
//! the query strings, fragments and user info of URLs replaced by
//! `<redacted>` (a blob download redirected to presigned storage must not
//! publish its signature).

/// An error and its causes, on one line, with URL secrets redacted
/// ([`redact_urls`]): this is what is logged, stored and served.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    redact_urls(&message)
}

/// `text` with the secrets of every `http://` or `https://` URL in it
/// replaced by `<redacted>`: the query and fragment (presigned storage URLs
/// carry their signature and credential there) and any user info. A URL
/// ends at white space, a quote or an angle bracket; closing punctuation
/// right after it stays.
pub fn redact_urls(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| lower[at..].find(scheme).map(|i| (at + i, scheme.len())))
        .min()
    {
        let (start, scheme_len) = found;
        let rest = &text[start..];
        let len = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(rest.len());
        let token = &rest[..len];
        let url = token.trim_end_matches([')', ']', '}', ',', '.', ';', ':']);
        out.push_str(&text[at..start]);
        out.push_str(&redact_url(url, scheme_len));
        out.push_str(&token[url.len()..]);
        at = start + len;
    }
    out.push_str(&text[at..]);
    out
}

/// One URL (`scheme_len` bytes of scheme and `://`) with its user info,
/// query and fragment redacted.
fn redact_url(url: &str, scheme_len: usize) -> String {
    let (scheme, rest) = url.split_at(scheme_len);
    let (before, secret) = match rest.find(['?', '#']) {
        Some(i) => (&rest[..i], true),
        None => (rest, false),
    };
    let authority_end = before.find('/').unwrap_or(before.len());
    let (authority, path) = before.split_at(authority_end);
    let mut out = String::from(scheme);
    match authority.rfind('@') {
        Some(i) => {
            out.push_str("<redacted>@");
            out.push_str(&authority[i + 1..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(path);
    if secret {
        out.push_str("?<redacted>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_secrets_are_redacted() {
        let cases = [
            (
                "GET https://bucket.s3.example/blobs/sha256:ab?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=5ec2e7 failed: error sending request for url (https://bucket.s3.example/blobs/sha256:ab?X-Amz-Signature=5ec2e7): connection refused",
                "GET https://bucket.s3.example/blobs/sha256:ab?<redacted> failed: error sending request for url (https://bucket.s3.example/blobs/sha256:ab?<redacted>): connection refused",
            ),
            (
                "redirected to \"HTTP://user:pa55@cdn.example:8443/x#sig=1\", then 'https://a.example/p?sig=2'.",
                "redirected to \"HTTP://<redacted>@cdn.example:8443/x?<redacted>\", then 'https://a.example/p?<redacted>'.",
            ),
            (
                "registry:127.0.0.1:5000/team/app@sha256:ab: not found (http://127.0.0.1:5000/v2/team/app/manifests/sha256:ab)",
                "registry:127.0.0.1:5000/team/app@sha256:ab: not found (http://127.0.0.1:5000/v2/team/app/manifests/sha256:ab)",
            ),
            ("no url here? really", "no url here? really"),
            ("https://", "https://"),
        ];
        for (text, redacted) in cases {
            assert_eq!(redact_urls(text), redacted, "{text}");
        }
    }
}
