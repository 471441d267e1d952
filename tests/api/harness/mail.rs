//! The one way tests read mail: the server's outbox (every backend queues
//! there first), and the codes and link keys in a mail's text.

use allauth_server::db::mail_outbox;

use super::TestServer;

/// Every mail the server queued, oldest first: (to, subject, text).
pub async fn mails(server: &TestServer) -> Vec<(String, String, String)> {
    let db = server.server.context().db.clone();
    db.run(|conn| {
        let mut found = Vec::new();
        let (mut id, mut misses) = (1, 0);
        while misses < 20 {
            match mail_outbox::by_id(conn, id)? {
                Some(m) => {
                    misses = 0;
                    found.push((m.to_addr, m.subject, m.body_text));
                }
                None => misses += 1,
            }
            id += 1;
        }
        Ok(found)
    })
    .await
    .expect("outbox read")
}

/// The code in a mail body (`XXXX-XXXX` on its own line).
pub fn code_in(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| {
            l.len() == 9
                && l.as_bytes()[4] == b'-'
                && l.chars().all(|c| c == '-' || c.is_ascii_uppercase())
        })
        .expect("a code in the mail")
        .to_string()
}

/// The texts (subject, a newline, then the plain-text body) of the mails
/// queued for `to`, oldest first.
pub async fn mails_to(server: &TestServer, to: &str) -> Vec<String> {
    mails(server)
        .await
        .into_iter()
        .filter(|(addr, _, _)| addr == to)
        .map(|(_, subject, text)| format!("{subject}\n{text}"))
        .collect()
}

/// The code in the last mail queued for `to`.
pub async fn last_code_to(server: &TestServer, to: &str) -> String {
    let mails = mails_to(server, to).await;
    code_in(mails.last().unwrap_or_else(|| panic!("no mail to {to}")))
}

/// The key of the last password-reset link mailed to `to`.
pub async fn reset_key_to(server: &TestServer, to: &str) -> String {
    let mails = mails_to(server, to).await;
    let text = mails
        .iter()
        .rev()
        .find(|text| text.contains("/password/reset/key/"))
        .unwrap_or_else(|| panic!("no reset link mailed to {to}"));
    link_key(text, "/password/reset/key/")
}

/// The last path segment of the first link in `text` that starts with
/// `prefix`: a verification or reset key. Keys are made of characters a URL
/// path carries unescaped, and mails carry them so (as allauth's do).
pub fn link_key(text: &str, prefix: &str) -> String {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("a link {prefix}… in {text}"));
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let key = link
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .expect("key segment");
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
        "the key in {link} is escaped or needs escaping"
    );
    key.to_owned()
}
