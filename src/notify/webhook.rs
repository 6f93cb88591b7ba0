//! Posting to a Mattermost incoming webhook. The URL is a secret (whoever has it can post to
//! the channel): it is never printed, not in errors and not in `--json`; only its host is.

use std::thread::sleep;
use std::time::Duration;

use anyhow::{Result, bail};
use reqwest::Url;
use reqwest::blocking::Client;

use super::USERNAME;

/// Environment variable that may hold the webhook URL instead of `--webhook`.
pub const URL_VAR: &str = "MM_PKG_WEBHOOK_URL";
/// How many times one post is tried (connection errors, timeouts and 5xx are retried).
pub const ATTEMPTS: u32 = 3;
/// Wait before the first retry; doubled for the next.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Connect and read timeout of one attempt.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// Longest piece of an error answer quoted in a warning.
const MAX_ERROR_TEXT: usize = 300;

/// A webhook to post to, with the optional channel and icon overrides.
pub struct Webhook {
    url: Url,
    channel: Option<String>,
    icon_url: Option<String>,
    client: Client,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook(host {})", self.host())
    }
}

impl Webhook {
    /// Checks `url` (http or https with a host), `channel` (a channel name or `@user`) and
    /// `icon_url` (http or https). Errors name the webhook by its host only.
    pub fn new(url: &str, channel: Option<&str>, icon_url: Option<&str>) -> Result<Self> {
        let url = match Url::parse(url.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
            _ => bail!(
                "the webhook URL (--webhook or ${URL_VAR}) is not an http:// or https:// URL \
                 (it is not shown here because it is a secret)"
            ),
        };
        if let Some(c) = channel {
            let ok = !c.is_empty()
                && c.len() <= 64
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.@".contains(&b));
            if !ok {
                bail!(
                    "--webhook-channel `{c}`: use a channel's name (lower-case letters, digits, \
                     - _ .) or @user"
                );
            }
        }
        if let Some(icon) = icon_url {
            let ok = Url::parse(icon).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
                && !icon.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                bail!("--webhook-icon-url `{icon}` must be an http:// or https:// URL");
            }
        }
        // Mattermost's hooks answer the post itself: a redirect is never followed (it would
        // carry the message elsewhere), and no Referer ever names the secret URL.
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .user_agent(concat!("mm-pkg/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Webhook {
            url,
            channel: channel.map(str::to_string),
            icon_url: icon_url.map(str::to_string),
            client,
        })
    }

    /// The host (and port, when not the default), the only part of the URL ever shown.
    pub fn host(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    /// The JSON body Mattermost expects for `text`.
    pub fn payload(&self, text: &str) -> serde_json::Value {
        let mut body = serde_json::json!({ "username": USERNAME, "text": text });
        if let Some(c) = &self.channel {
            body["channel"] = c.clone().into();
        }
        if let Some(i) = &self.icon_url {
            body["icon_url"] = i.clone().into();
        }
        body
    }

    /// Posts `text` once, retrying connection errors, timeouts and 5xx answers
    /// ([`ATTEMPTS`] tries, backoff from [`FIRST_BACKOFF`]). Succeeds only when the webhook
    /// itself answers 2xx: a redirect is not followed and counts as a failure. The error is a
    /// one-line warning that names the host, never the URL.
    pub fn post(&self, text: &str) -> Result<(), String> {
        let body = self.payload(text).to_string();
        let host = self.host();
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                sleep(FIRST_BACKOFF * 2u32.pow(attempt - 1));
            }
            let request = self
                .client
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            match request.send() {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) if resp.status().is_redirection() => {
                    return Err(format!(
                        "the webhook at {host} answered {} (a redirect): mm-pkg does not follow \
                         redirects, which would send the message and its URL elsewhere; use the \
                         webhook URL Mattermost shows (Integrations > Incoming Webhooks)",
                        resp.status()
                    ));
                }
                Ok(resp) => {
                    let status = resp.status();
                    let detail = self.error_text(&resp.text().unwrap_or_default());
                    let what = format!("the webhook at {host} answered {status}{detail}");
                    if !status.is_server_error() {
                        let hint = if status.as_u16() == 404 || status.as_u16() == 400 {
                            " (was the webhook deleted, or is the URL wrong?)"
                        } else {
                            ""
                        };
                        return Err(format!("{what}{hint}"));
                    }
                    last = what;
                }
                Err(err) => {
                    last = format!(
                        "cannot post to the webhook at {host}: {}",
                        crate::release::http::describe(&err.without_url())
                    );
                }
            }
        }
        Err(format!("{last} (after {ATTEMPTS} attempts)"))
    }

    /// Mattermost's error text (the `message` of its JSON error, else the body), one line,
    /// short, with the URL and its secret path taken out.
    fn error_text(&self, body: &str) -> String {
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| body.to_string());
        let mut text = message.replace(self.url.as_str(), "<webhook URL>");
        let path = self.url.path();
        if path.len() > 1 {
            text = text.replace(path, "<webhook path>");
        }
        if let Some(query) = self.url.query().filter(|q| !q.is_empty()) {
            text = text.replace(query, "<webhook query>");
        }
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_ERROR_TEXT)
            .collect();
        match text.trim() {
            "" => String::new(),
            t => format!(": {t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_url_error_does_not_show_it() {
        let err = Webhook::new("ftp://chat.example.org/hooks/s3cr3t", None, None).unwrap_err();
        assert!(!format!("{err:#}").contains("s3cr3t"));
    }

    #[test]
    fn error_text_hides_the_secret_path() {
        let hook = Webhook::new("https://chat.example.org/hooks/s3cr3t", None, None).unwrap();
        assert_eq!(hook.host(), "chat.example.org");
        let text =
            hook.error_text(r#"{"message":"Invalid webhook /hooks/s3cr3t","status_code":400}"#);
        assert_eq!(text, ": Invalid webhook <webhook path>");
        let hook = Webhook::new("https://chat.example.org/hooks?key=s3cr3t", None, None).unwrap();
        assert_eq!(hook.error_text("bad key=s3cr3t"), ": bad <webhook query>");
    }

    #[test]
    fn payload_carries_channel_and_icon_only_when_asked() {
        let hook =
            Webhook::new("http://127.0.0.1:8065/hooks/x", Some("town-square"), None).unwrap();
        let body = hook.payload("hi");
        assert_eq!(body["username"], "mm-pkg");
        assert_eq!(body["channel"], "town-square");
        assert!(body.get("icon_url").is_none());
        assert!(Webhook::new("http://h/hooks/x", Some("Town Square!"), None).is_err());
    }
}
