//! The HTTP client shared by release discovery and downloads: timeouts, and bounded retries
//! with backoff for connection errors, timeouts and server errors.

use std::fmt;
use std::thread::sleep;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};

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
        let client = Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("mm-pkg/", env!("CARGO_PKG_VERSION")))
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
                    let url = url.to_string();
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
                    last = Some(HttpError::Network {
                        url: url.to_string(),
                        message: describe(&err),
                    })
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
