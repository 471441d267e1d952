//! A software WebAuthn authenticator, as a browser with a security key or
//! a passkey would answer `navigator.credentials.create()` and `.get()`
//! with the options the server sent: a P-256 key, "none" attestation, the
//! JSON of `PublicKeyCredential.toJSON()`. It signs what it is asked to,
//! honestly: the tests tamper with its output to check refusals.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_cbor_2::Value as Cbor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const UP: u8 = 0x01;
const UV: u8 = 0x04;
const AT: u8 = 0x40;

pub struct SoftAuthenticator {
    key: SigningKey,
    pub credential_id: Vec<u8>,
    counter: u32,
    /// The user handle the credential was created for.
    pub user_handle: Vec<u8>,
    /// Whether it verifies its user (PIN, biometrics).
    pub verifies_user: bool,
    origin: String,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

impl SoftAuthenticator {
    /// A new authenticator used from `origin`.
    pub fn new(origin: &str, verifies_user: bool) -> SoftAuthenticator {
        let mut secret = [0u8; 32];
        let mut id = [0u8; 16];
        getrandom(&mut secret);
        getrandom(&mut id);
        SoftAuthenticator {
            key: SigningKey::from_slice(&secret).expect("a valid scalar"),
            credential_id: id.to_vec(),
            counter: 0,
            user_handle: Vec::new(),
            verifies_user,
            origin: origin.to_owned(),
        }
    }

    /// An authenticator already holding a credential: the P-256 private
    /// `scalar`, `credential_id`, made for `user_handle` (one registered
    /// elsewhere, e.g. in a django-allauth database to import).
    #[allow(dead_code)]
    pub fn with_key(
        origin: &str,
        verifies_user: bool,
        scalar: &[u8],
        credential_id: &[u8],
        user_handle: &[u8],
    ) -> SoftAuthenticator {
        SoftAuthenticator {
            key: SigningKey::from_slice(scalar).expect("a valid scalar"),
            credential_id: credential_id.to_vec(),
            counter: 0,
            user_handle: user_handle.to_vec(),
            verifies_user,
            origin: origin.to_owned(),
        }
    }

    fn flags(&self) -> u8 {
        if self.verifies_user {
            UP | UV
        } else {
            UP
        }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        let (x, y) = (bytes[1..33].to_vec(), bytes[33..65].to_vec());
        let mut map = BTreeMap::new();
        map.insert(Cbor::Integer(1), Cbor::Integer(2));
        map.insert(Cbor::Integer(3), Cbor::Integer(-7));
        map.insert(Cbor::Integer(-1), Cbor::Integer(1));
        map.insert(Cbor::Integer(-2), Cbor::Bytes(x));
        map.insert(Cbor::Integer(-3), Cbor::Bytes(y));
        serde_cbor_2::to_vec(&Cbor::Map(map)).expect("cbor")
    }

    /// The registration response to `creation_options` (the `publicKey`
    /// member's parent, as the server sends it); `resident` is what the
    /// browser reports of `credProps.rk`.
    pub fn create(&mut self, creation_options: &Value, resident: bool) -> Value {
        let options = &creation_options["publicKey"];
        let rp_id = options["rp"]["id"].as_str().expect("rp id");
        let challenge = options["challenge"].as_str().expect("challenge");
        self.user_handle = unb64(options["user"]["id"].as_str().expect("user id"));
        let client_data = self.client_data("webauthn.create", challenge);
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags() | AT);
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]);
        let id_length = u16::try_from(self.credential_id.len()).expect("id length");
        auth_data.extend_from_slice(&id_length.to_be_bytes());
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend_from_slice(&self.cose_key());
        let mut object = BTreeMap::new();
        object.insert(Cbor::Text("fmt".into()), Cbor::Text("none".into()));
        object.insert(Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new()));
        object.insert(Cbor::Text("authData".into()), Cbor::Bytes(auth_data));
        let attestation = serde_cbor_2::to_vec(&Cbor::Map(object)).expect("cbor");
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "attestationObject": b64(&attestation),
                "transports": ["usb"],
            },
            "clientExtensionResults": {"credProps": {"rk": resident}},
            "authenticatorAttachment": "cross-platform",
        })
    }

    /// The assertion for `request_options` (the parent of `publicKey`).
    pub fn get(&mut self, request_options: &Value) -> Value {
        let options = &request_options["publicKey"];
        let rp_id = options["rpId"].as_str().expect("rp id");
        let challenge = options["challenge"].as_str().expect("challenge");
        let client_data = self.client_data("webauthn.get", challenge);
        self.counter += 1;
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags());
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": b64(&self.credential_id),
            "rawId": b64(&self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64(&client_data),
                "authenticatorData": b64(&auth_data),
                "signature": b64(signature.to_der().as_bytes()),
                "userHandle": b64(&self.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "cross-platform",
        })
    }
}

/// Random bytes for the test keys.
fn getrandom(buf: &mut [u8]) {
    allauth_server::app::security::secrets::fill_random(buf);
}
