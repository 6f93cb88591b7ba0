//! The HTTP client shared by release discovery and downloads: timeouts, and bounded retries
//! with backoff for connection errors, timeouts and server errors.

use std::fmt;
use std::thread::sleep;
use std::time::Duration;

use std::io::Read;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_RANGE, HeaderMap, HeaderValue};
use reqwest::redirect::{Attempt, Policy};

/// How many times one request is tried.
pub const ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubled for each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Why a request did not produce a usable response.
#[derive(Debug)]
pub enum HttpError {
    /// 404: the file is not there.
    NotFound {
        /// The URL asked for.
        url: String,
    },
    /// 403 or 429: a rate limit (GitHub's API) or a refusal.
    RateLimited {
        /// The URL asked for.
        url: String,
        /// The status.
        status: StatusCode,
    },
    /// Any other non-success status after the retries.
    Status {
        /// The URL asked for.
        url: String,
        /// The status.
        status: StatusCode,
    },
    /// No answer: connection refused or reset, DNS, timeout — after the retries.
    Network {
        /// The URL asked for.
        url: String,
        /// What went wrong.
        message: String,
    },
}

impl HttpError {
    /// True when the network could not be used at all or the server refused to serve us
    /// (offline, rate-limited): callers may fall back to what they have.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            HttpError::Network { .. } | HttpError::RateLimited { .. }
        )
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::NotFound { url } => write!(f, "{url}: not found (404)"),
            HttpError::RateLimited { url, status } => {
                write!(
                    f,
                    "{url}: refused with {status} (rate limit? set GITHUB_TOKEN)"
                )
            }
            HttpError::Status { url, status } => write!(f, "{url}: the server answered {status}"),
            HttpError::Network { url, message } => write!(f, "{url}: {message}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A client with mm-pkg's timeouts and retry policy.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client,
    attempts: u32,
}

impl Http {
    /// A client whose connects and reads each time out after `timeout`.
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        // The bytes verified must be the bytes published: no transfer compression.
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        let client = Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("mm-pkg/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .redirect(redirect_policy())
            .build()?;
        Ok(Http {
            client,
            attempts: ATTEMPTS,
        })
    }

    /// Starts a GET request to decorate (headers) before [`Http::send`].
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.client.get(url)
    }

    /// Starts a HEAD request.
    pub fn head(&self, url: &str) -> RequestBuilder {
        self.client.head(url)
    }

    /// Sends the request built by `make`, retrying connection errors, timeouts and 5xx
    /// answers with exponential backoff. Returns a success (2xx) response.
    pub fn send(
        &self,
        url: &str,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        let mut last = None;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                sleep(FIRST_BACKOFF * 2u32.pow(attempt - 1));
            }
            match make().send() {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status();
                    let url = with_redirect(url, resp.url());
                    match status {
                        StatusCode::NOT_FOUND => return Err(HttpError::NotFound { url }),
                        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => {
                            return Err(HttpError::RateLimited { url, status });
                        }
                        s if s.is_server_error() => last = Some(HttpError::Status { url, status }),
                        _ => return Err(HttpError::Status { url, status }),
                    }
                }
                Err(err) => {
                    let url = match err.url() {
                        Some(at) => with_redirect(url, at),
                        None => url.to_string(),
                    };
                    let network = HttpError::Network {
                        url,
                        message: describe(&err),
                    };
                    // A refused redirect does not get better by asking again.
                    if err.is_redirect() {
                        return Err(network);
                    }
                    last = Some(network)
                }
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// How many attempts a request gets.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

/// A one-line description of a reqwest error, including its source chain.
pub fn describe(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// At most this many redirects are followed.
const MAX_REDIRECTS: usize = 10;

/// Follows redirects, but never from https to http.
fn redirect_policy() -> Policy {
    Policy::custom(|attempt: Attempt<'_>| {
        match refuse_redirect(attempt.previous(), attempt.url()) {
            Some(why) => attempt.error(why),
            None => attempt.follow(),
        }
    })
}

/// Why a redirect to `next`, after the URLs in `previous`, is not followed: a downgrade
/// from https to anything else, or too many redirects.
fn refuse_redirect(previous: &[reqwest::Url], next: &reqwest::Url) -> Option<String> {
    if previous.iter().any(|u| u.scheme() == "https") && next.scheme() != "https" {
        return Some(format!("refused a redirect from https to {next}"));
    }
    if previous.len() > MAX_REDIRECTS {
        return Some(format!("more than {MAX_REDIRECTS} redirects"));
    }
    None
}

/// `url`, and where redirects led when that is somewhere else.
fn with_redirect(url: &str, at: &reqwest::Url) -> String {
    match at.as_str() == url {
        true => url.to_string(),
        false => format!("{url} (redirected to {at})"),
    }
}

/// Refuses a response whose body is compressed or otherwise transformed: mm-pkg asks for
/// the identity encoding, and only the published bytes verify.
pub fn check_encoding(response: &Response, url: &str) -> anyhow::Result<()> {
    let Some(encoding) = response.headers().get(CONTENT_ENCODING) else {
        return Ok(());
    };
    let encoding = String::from_utf8_lossy(encoding.as_bytes()).into_owned();
    if !encoding.trim().eq_ignore_ascii_case("identity") {
        bail!(
            "{}: the server sent the body with Content-Encoding `{encoding}` although mm-pkg \
             asked for the identity encoding; a proxy or mirror is transforming the download",
            with_redirect(url, response.url())
        );
    }
    Ok(())
}

/// True when `response` is a 206 whose `Content-Range` starts exactly at `have` (so its
/// body continues a `.part` file of that length).
pub fn resumes_at(response: &Response, have: u64) -> bool {
    if response.status() != StatusCode::PARTIAL_CONTENT {
        return false;
    }
    let Some(range) = response
        .headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    range
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('-'))
        .and_then(|(start, _)| start.trim().parse::<u64>().ok())
        == Some(have)
}

/// The whole body of a small response (a signature, an index page), at most `limit` bytes.
pub fn read_body(response: Response, url: &str, limit: u64) -> anyhow::Result<Vec<u8>> {
    check_encoding(&response, url)?;
    let mut bytes = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {url}"))?;
    if bytes.len() as u64 > limit {
        bail!("{url}: the answer is larger than {limit} bytes");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_never_downgrade_from_https() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let https = [url("https://releases.mattermost.com/9.11.18/x.tar.gz")];
        let why = refuse_redirect(&https, &url("http://mirror.example/x.tar.gz"));
        assert!(why.is_some_and(|w| w.contains("from https to http://mirror.example/")));
        assert!(refuse_redirect(&https, &url("https://cdn.example/x.tar.gz")).is_none());
        let http = [url("http://127.0.0.1:1/x")];
        assert!(refuse_redirect(&http, &url("http://127.0.0.1:2/x")).is_none());
        // Once on https, a later hop cannot go back to http either.
        let chain = [url("http://a.example/x"), url("https://b.example/x")];
        assert!(refuse_redirect(&chain, &url("http://c.example/x")).is_some());
    }
}
