//! A stand-in for a Mattermost incoming webhook on 127.0.0.1: records every request and
//! answers with scripted statuses (200 once the script is used up).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread;

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub struct Received {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// The Content-Type header.
    pub content_type: Option<String>,
    /// The body.
    pub body: String,
    /// The Referer header, if any.
    pub referer: Option<String>,
}

impl Received {
    /// The body parsed as JSON (panics if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the webhook body is not JSON ({e}): {}", self.body))
    }
}

#[derive(Default)]
struct State {
    /// Status, body and the Location header of each scripted answer.
    script: VecDeque<(u16, String, Option<String>)>,
    received: Vec<Received>,
}

/// The running receiver; stops when dropped.
pub struct Receiver {
    server: Arc<tiny_http::Server>,
    state: Arc<Mutex<State>>,
    /// The secret webhook URL, `http://127.0.0.1:PORT/hooks/<secret>`.
    pub url: String,
    /// The secret part of the URL, which must never appear in mm-pkg's output.
    pub secret: String,
}

impl Receiver {
    /// Starts a receiver on a free loopback port.
    pub fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let secret = "xq7s3cr3thookidk4n9bz1".to_string();
        let url = format!(
            "http://{}/hooks/{secret}",
            server.server_addr().to_ip().unwrap()
        );
        let state = Arc::new(Mutex::new(State::default()));
        let (srv, st) = (server.clone(), state.clone());
        thread::spawn(move || {
            while let Ok(mut request) = srv.recv() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let header = |name: &'static str| {
                    request
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv(name))
                        .map(|h| h.value.as_str().to_string())
                };
                let (content_type, referer) = (header("Content-Type"), header("Referer"));
                let (status, answer, location) = {
                    let mut s = st.lock().unwrap();
                    s.received.push(Received {
                        method: request.method().to_string(),
                        path: request.url().to_string(),
                        content_type,
                        body,
                        referer,
                    });
                    s.script.pop_front().unwrap_or((200, "ok".into(), None))
                };
                let mut response =
                    tiny_http::Response::from_string(answer).with_status_code(status);
                if let Some(to) = location {
                    response.add_header(
                        tiny_http::Header::from_bytes("Location", to.as_bytes()).unwrap(),
                    );
                }
                let _ = request.respond(response);
            }
        });
        Receiver {
            server,
            state,
            url,
            secret,
        }
    }

    /// Answers the next request with `status` and `body` (queued after earlier ones).
    pub fn answer(&self, status: u16, body: &str) {
        self.state
            .lock()
            .unwrap()
            .script
            .push_back((status, body.to_string(), None));
    }

    /// Answers the next request with the redirect `status` to `location`.
    pub fn redirect(&self, status: u16, location: &str) {
        self.state.lock().unwrap().script.push_back((
            status,
            String::new(),
            Some(location.to_string()),
        ));
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}
