//! Reading text messages in tests: the files the `file` backend writes
//! (what the phone receives), and the outbox for what was queued at all.

use std::time::Duration;

use allauth_server::db::sms_outbox;

use super::TestServer;

/// One text as delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    pub to: String,
    pub kind: String,
    pub body: String,
}

fn delivered(server: &TestServer) -> Vec<Text> {
    let dir = server.server.context().config.sms.file_path.clone();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| std::fs::read_to_string(dir.join(name)).ok())
        .map(|text| {
            let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
            let field = |name: &str| {
                head.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .unwrap_or_default()
                    .to_string()
            };
            Text {
                to: field("To"),
                kind: field("Kind"),
                body: body.trim().to_string(),
            }
        })
        .collect()
}

/// The texts delivered to `to`, oldest first, once there are at least
/// `at_least` (waits up to ten seconds for the sender).
pub async fn texts_to(server: &TestServer, to: &str, at_least: usize) -> Vec<Text> {
    for _ in 0..200 {
        let texts: Vec<Text> = delivered(server)
            .into_iter()
            .filter(|t| t.to == to)
            .collect();
        if texts.len() >= at_least {
            return texts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {at_least} texts reached {to}");
}

/// The code (`XXXX-XXXX`) of the last of at least `at_least` texts to `to`.
pub async fn text_code(server: &TestServer, to: &str, at_least: usize) -> String {
    let texts = texts_to(server, to, at_least).await;
    let last = texts.last().expect("a text");
    code_in_text(&last.body).unwrap_or_else(|| panic!("no code in {:?}", last.body))
}

/// The code in a text's body, if it has one.
pub fn code_in_text(body: &str) -> Option<String> {
    body.split(|c: char| c.is_whitespace() || matches!(c, ':' | '.' | ','))
        .find(|w| {
            w.len() == 9
                && w.as_bytes()[4] == b'-'
                && w.chars().all(|c| c == '-' || c.is_ascii_uppercase())
        })
        .map(str::to_string)
}

/// How many texts the server has queued so far (sent or not), to any number.
pub async fn queued_texts(server: &TestServer) -> usize {
    let db = server.server.context().db.clone();
    db.run(sms_outbox::all).await.expect("outbox read").len()
}
