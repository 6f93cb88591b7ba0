//! A plain static file server on 127.0.0.1 for repository tests: GET and HEAD of the files
//! under one directory, read from disk on every request (so tests can change them), 404
//! otherwise. No listings, no caching headers.

#![allow(dead_code)]

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::thread;

/// The running server; stops when dropped.
pub struct StaticServer {
    server: Arc<tiny_http::Server>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl StaticServer {
    /// Serves `root` on a free loopback port.
    pub fn start(root: &Path) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        for _ in 0..4 {
            let (server, root) = (server.clone(), root.to_path_buf());
            thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    let response = match file_for(&root, request.url()) {
                        Some(path) if path.is_file() => match std::fs::read(&path) {
                            Ok(bytes) => tiny_http::Response::from_data(bytes),
                            Err(_) => {
                                tiny_http::Response::from_data(Vec::new()).with_status_code(500)
                            }
                        },
                        _ => tiny_http::Response::from_data(Vec::new()).with_status_code(404),
                    };
                    let _ = request.respond(response);
                }
            });
        }
        StaticServer { server, base }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

/// The file under `root` that `url` names, if it stays inside `root`.
fn file_for(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}
