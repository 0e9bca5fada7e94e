//! HTTP helpers for talking to a running server the way a browser would.

use std::time::Duration;

/// A client for tests: keeps cookies (the session), does not follow redirects (tests assert
/// on them), bypasses any proxy from the environment (the server is on loopback), and gives up
/// after 30 s instead of hanging the suite.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build the test HTTP client")
}

/// The CSRF token from `<meta name="csrf-token" content="…">`, which every page carries for
/// forms and `x-csrf-token` headers.
pub fn csrf_from_html(html: &str) -> Option<String> {
    let mut rest = html;
    while let Some(start) = rest.find("<meta") {
        let tag_and_after = &rest[start..];
        let end = tag_and_after.find('>')?;
        let tag = &tag_and_after[..end];
        if attribute(tag, "name").as_deref() == Some("csrf-token") {
            return attribute(tag, "content");
        }
        rest = &tag_and_after[end..];
    }
    None
}

/// Value of `name="…"` (or single-quoted) inside one tag, with entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    for quote in ['"', '\''] {
        let needle = format!(" {name}={quote}");
        if let Some(start) = tag.find(&needle) {
            let value = &tag[start + needle.len()..];
            let end = value.find(quote)?;
            return Some(unescape(&value[..end]));
        }
    }
    None
}

/// Undoes the HTML escaping a template engine applies to attribute values.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Logs in through the real login form and returns the CSRF token of the session.
///
/// Panics unless the server answers the form with a redirect (which is how it says "logged
/// in"; a failed login re-renders the form) and the home page then carries a CSRF token.
pub async fn login(
    client: &reqwest::Client,
    base_url: &str,
    username: &str,
    password: &str,
) -> String {
    let base_url = base_url.trim_end_matches('/');
    let response = client
        .post(format!("{base_url}/users/login/"))
        .form(&[
            ("username", username),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {base_url}/users/login/ failed: {error}"));
    let status = response.status();
    if !matches!(status.as_u16(), 302 | 303 | 307) {
        let body = response.text().await.unwrap_or_default();
        panic!(
            "login as {username:?} was not accepted: expected a redirect, got {status}; body:\n{body}"
        );
    }
    let response = client
        .get(format!("{base_url}/"))
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {base_url}/ after login failed: {error}"));
    let status = response.status();
    let html = response
        .text()
        .await
        .unwrap_or_else(|error| panic!("read GET {base_url}/ body: {error}"));
    csrf_from_html(&html).unwrap_or_else(|| {
        panic!("GET {base_url}/ after login ({status}) has no csrf-token meta tag; body:\n{html}")
    })
}

#[cfg(test)]
mod tests {
    use super::csrf_from_html;

    #[test]
    fn finds_the_csrf_meta_tag() {
        let html = r#"<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <meta name="csrf-token" content="abc&amp;123"></head>"#;
        assert_eq!(csrf_from_html(html).as_deref(), Some("abc&123"));
        assert_eq!(
            csrf_from_html(r#"<meta content='t0k' name='csrf-token' />"#).as_deref(),
            Some("t0k")
        );
        assert_eq!(
            csrf_from_html(r#"<meta name="viewport" content="x">"#),
            None
        );
        assert_eq!(csrf_from_html("<p>no head</p>"), None);
    }
}
