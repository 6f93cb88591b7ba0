//! An HTTP server on 127.0.0.1 for the tests, playing GitHub's releases API and the
//! release server, with faults on demand.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Something a route does wrong, once, on its next request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and no body.
    Status(u16),
    /// Send headers and this many body bytes, then close the connection.
    DropAfter(usize),
    /// Wait this long before answering.
    Delay(Duration),
    /// Answer as usual with this extra header (name, value).
    Header(&'static str, &'static str),
    /// Answer 206 with the body from this offset, whatever range was asked for.
    RangeFrom(usize),
    /// Answer 302 with this `Location`.
    Redirect(String),
    /// Announce this `Content-Length` whatever the body is, send the body, then close.
    ClaimLength(u64),
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Path with query.
    pub url: String,
    /// The Range header, if any.
    pub range: Option<String>,
    /// The Authorization header, if any.
    pub authorization: Option<String>,
    /// The Accept-Encoding header, if any.
    pub accept_encoding: Option<String>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Vec<u8>>,
    faults: HashMap<String, VecDeque<Fault>>,
    hits: Vec<Hit>,
}

/// The running server; stops when dropped.
pub struct Server {
    server: Arc<tiny_http::Server>,
    state: Arc<Mutex<State>>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    /// Starts a server on a free loopback port.
    pub fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        for _ in 0..4 {
            let (server, state) = (server.clone(), state.clone());
            thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    handle(request, &state);
                }
            });
        }
        Server {
            server,
            state,
            base,
        }
    }

    /// Serves `body` at `path` (which may include a query string).
    pub fn route(&self, path: &str, body: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), body);
    }

    /// Makes the next request to `path` go wrong with `fault` (queued after earlier faults).
    pub fn fault(&self, path: &str, fault: Fault) {
        let mut state = self.state.lock().unwrap();
        state
            .faults
            .entry(path.to_string())
            .or_default()
            .push_back(fault);
    }

    /// Every request so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }

    /// Requests to URLs starting with `prefix`.
    pub fn hits_to(&self, prefix: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.url.starts_with(prefix))
            .collect()
    }

    /// Serves a GitHub-style releases API at `path`: `tags` as (tag, draft, prerelease), in
    /// pages of the `per_page` the client asks for.
    pub fn releases_api(&self, path: &str, tags: &[(&str, bool, bool)], per_page: usize) {
        let pages: Vec<&[(&str, bool, bool)]> = tags.chunks(per_page).collect();
        for page in 1..=pages.len() + 1 {
            let items: Vec<String> = pages
                .get(page - 1)
                .map(|p| p.to_vec())
                .unwrap_or_default()
                .iter()
                .map(|(tag, draft, pre)| {
                    format!("{{\"tag_name\":\"{tag}\",\"draft\":{draft},\"prerelease\":{pre},\"name\":\"{tag}\"}}")
                })
                .collect();
            self.route(
                &format!("{path}?per_page={per_page}&page={page}"),
                format!("[{}]", items.join(",")).into_bytes(),
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn handle(request: tiny_http::Request, state: &Arc<Mutex<State>>) {
    let url = request.url().to_string();
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    let range = header("Range");
    let (body, fault) = {
        let mut s = state.lock().unwrap();
        s.hits.push(Hit {
            url: url.clone(),
            range: range.clone(),
            authorization: header("Authorization"),
            accept_encoding: header("Accept-Encoding"),
        });
        let fault = s.faults.get_mut(&url).and_then(|q| q.pop_front());
        (s.routes.get(&url).cloned(), fault)
    };
    if let Some(Fault::Delay(d)) = fault {
        thread::sleep(d);
    }
    let Some(body) = body else {
        let _ = request.respond(tiny_http::Response::empty(404));
        return;
    };
    if let Some(Fault::Status(code)) = fault {
        let _ = request.respond(tiny_http::Response::empty(code));
        return;
    }
    if let Some(Fault::Redirect(location)) = &fault {
        let header = tiny_http::Header::from_bytes("Location", location.as_bytes()).unwrap();
        let _ = request.respond(tiny_http::Response::empty(302).with_header(header));
        return;
    }
    let forced = match &fault {
        Some(Fault::RangeFrom(n)) => Some((*n).min(body.len())),
        _ => None,
    };
    let start = forced.or(range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n <= body.len()));
    let (status, slice) = match start {
        Some(n) => (206, &body[n..]),
        None => (200, &body[..]),
    };
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        if status == 206 {
            "Partial Content"
        } else {
            "OK"
        },
        match fault {
            Some(Fault::ClaimLength(n)) => n as usize,
            _ => slice.len(),
        }
    );
    if let Some(n) = start {
        head.push_str(&format!(
            "Content-Range: bytes {n}-{}/{}\r\n",
            body.len().saturating_sub(1),
            body.len()
        ));
    }
    if let Some(Fault::Header(name, value)) = &fault {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let limit = match fault {
        Some(Fault::DropAfter(n)) => n.min(slice.len()),
        _ => slice.len(),
    };
    let mut writer = request.into_writer();
    let _ = writer.write_all(head.as_bytes());
    let _ = writer.write_all(&slice[..limit]);
    let _ = writer.flush();
}
