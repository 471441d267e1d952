//! Hand-written support for the generated trait: extractors that never reject a
//! request (so every answer, even to garbage, is an allauth envelope carrying
//! the CORS and cookie headers the handler adds), the reply type that can send
//! any allauth status while the document shows the success schema, and the
//! wire error envelope.

use std::any::TypeId;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Mutex, OnceLock};

use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ApiEndpointResponse, Body, ErrorStatusCode, ExclusiveExtractor,
    ExtractorMetadata, HttpError, HttpResponse, HttpResponseError, HttpResponseOk, RequestContext,
    ServerContext, SharedExtractor, TypedBody, UntypedBody,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::types;

// ---------------------------------------------------------------------------
// Errors on the wire
// ---------------------------------------------------------------------------

/// One entry of the `errors` list of an allauth envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorItem {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    pub message: String,
}

impl ErrorItem {
    pub fn new(code: impl Into<String>, param: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            param: param.map(str::to_string),
            message: message.into(),
        }
    }
}

/// The error type of every trait method, as dropshot sees it.
///
/// Handlers answer allauth errors through [`Reply::envelope`], which can carry
/// the CORS and cookie headers; dropshot's error path cannot. This type exists
/// so that the document shows the allauth error schema, and for the rare
/// failure inside dropshot itself, which still gets the envelope.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct ApiError(Value);

impl ApiError {
    /// `{"status": N, "errors": [...]}`.
    pub fn with_errors(status: StatusCode, errors: Vec<ErrorItem>) -> Self {
        Self(json!({ "status": status.as_u16(), "errors": errors }))
    }

    pub fn status(&self) -> StatusCode {
        self.0
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::BAD_REQUEST)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl JsonSchema for ApiError {
    fn schema_name() -> String {
        "ErrorResponse".to_string()
    }

    fn json_schema(generator: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        types::ErrorResponse::json_schema(generator)
    }
}

impl From<HttpError> for ApiError {
    fn from(error: HttpError) -> Self {
        let code = error
            .error_code
            .clone()
            .unwrap_or_else(|| "invalid".to_string());
        Self::with_errors(
            error.status_code.as_status(),
            vec![ErrorItem::new(code, None, error.external_message)],
        )
    }
}

impl HttpResponseError for ApiError {
    fn status_code(&self) -> ErrorStatusCode {
        ErrorStatusCode::from_status(self.status()).unwrap_or(ErrorStatusCode::BAD_REQUEST)
    }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

enum ReplyBody<T> {
    Typed(T),
    Envelope(Envelope),
}

/// The body of an allauth envelope: a JSON object, which gets `status`
/// inserted, or one of the document's response bodies already serialised
/// (it carries its own `status`).
pub enum Envelope {
    Json(Value),
    Serialized(Serialized),
}

impl Envelope {
    /// The bytes sent for an answer with `status`.
    pub fn into_bytes(self, status: StatusCode) -> serde_json::Result<bytes::Bytes> {
        match self {
            Envelope::Json(mut body) => {
                if let Value::Object(map) = &mut body {
                    map.insert("status".to_string(), json!(status.as_u16()));
                }
                serde_json::to_vec(&body).map(bytes::Bytes::from)
            }
            Envelope::Serialized(body) => Ok(body.0),
        }
    }

    fn into_body(self, status: StatusCode) -> serde_json::Result<Body> {
        self.into_bytes(status).map(Body::from)
    }
}

/// A response body of the document serialised straight to its bytes (no
/// `serde_json::Value` in between); it carries its own `status`.
#[derive(Clone)]
pub struct Serialized(bytes::Bytes);

impl Serialized {
    pub fn of<T: Serialize>(body: &T) -> serde_json::Result<Self> {
        serde_json::to_vec(body).map(|bytes| Self(bytes.into()))
    }
}

/// A `T` serialised ahead of time, for an answer that is the same for many
/// calls (`GET config`): it is made only from a `T`, so the compiler still
/// holds it to the document, and sending it copies no bytes.
pub struct Prepared<T> {
    body: Serialized,
    of: PhantomData<fn() -> T>,
}

impl<T: Serialize> Prepared<T> {
    pub fn new(body: &T) -> serde_json::Result<Self> {
        Ok(Self {
            body: Serialized::of(body)?,
            of: PhantomData,
        })
    }
}

impl<T> Clone for Prepared<T> {
    fn clone(&self) -> Self {
        Self {
            body: self.body.clone(),
            of: PhantomData,
        }
    }
}

/// The answer of an operation. The document shows `T` under `STATUS`; the
/// handler may still answer any allauth status with any envelope (a pending
/// flow's 401, a 409…), because the allauth wire does.
pub struct Reply<T, const STATUS: u16 = 200> {
    status: StatusCode,
    body: ReplyBody<T>,
    headers: HeaderMap,
}

impl<T, const STATUS: u16> Reply<T, STATUS> {
    /// The documented success answer.
    pub fn success(body: T) -> Self {
        Self {
            status: StatusCode::from_u16(STATUS).unwrap_or(StatusCode::OK),
            body: ReplyBody::Typed(body),
            headers: HeaderMap::new(),
        }
    }

    /// The documented success answer, serialised ahead of time.
    pub fn prepared(body: Prepared<T>) -> Self {
        Self {
            status: StatusCode::from_u16(STATUS).unwrap_or(StatusCode::OK),
            body: ReplyBody::Envelope(Envelope::Serialized(body.body)),
            headers: HeaderMap::new(),
        }
    }

    /// Any other allauth answer.
    pub fn envelope(status: StatusCode, body: Envelope) -> Self {
        Self {
            status,
            body: ReplyBody::Envelope(body),
            headers: HeaderMap::new(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }
}

impl<T, const STATUS: u16> HttpResponse for Reply<T, STATUS>
where
    T: Serialize + JsonSchema + Send + Sync + 'static,
{
    fn to_result(self) -> Result<Response<Body>, HttpError> {
        let body: Body = match self.body {
            ReplyBody::Typed(body) => serde_json::to_vec(&body).map(Body::from),
            ReplyBody::Envelope(body) => body.into_body(self.status),
        }
        .map_err(|e| HttpError::for_internal_error(e.to_string()))?;
        let mut response = Response::builder().status(self.status);
        if let Some(headers) = response.headers_mut() {
            headers.extend(self.headers);
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        Ok(response.body(body)?)
    }

    fn response_metadata() -> ApiEndpointResponse {
        // The schema generator for `T` is only reachable through dropshot's
        // own coded responses; borrow it and put our status on it.
        let mut metadata = <HttpResponseOk<T> as HttpResponse>::response_metadata();
        let status = StatusCode::from_u16(STATUS).unwrap_or(StatusCode::OK);
        metadata.success = Some(status);
        metadata.description = Some(status.canonical_reason().unwrap_or("Success").to_string());
        metadata
    }

    fn status_code(&self) -> StatusCode {
        self.status
    }
}

/// A `302 Found` with a `Location`, for the provider redirect; like
/// [`Reply`], it can still answer an allauth envelope instead.
pub struct Redirect {
    target: Result<String, (StatusCode, Envelope)>,
    headers: HeaderMap,
}

impl Redirect {
    pub fn to(location: impl Into<String>) -> Self {
        Self {
            target: Ok(location.into()),
            headers: HeaderMap::new(),
        }
    }

    /// Any other allauth answer.
    pub fn envelope(status: StatusCode, body: Envelope) -> Self {
        Self {
            target: Err((status, body)),
            headers: HeaderMap::new(),
        }
    }

    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }
}

impl HttpResponse for Redirect {
    fn to_result(self) -> Result<Response<Body>, HttpError> {
        let (status, location, body) = match self.target {
            Ok(location) => (StatusCode::FOUND, Some(location), Body::empty()),
            Err((status, body)) => {
                let body = body
                    .into_body(status)
                    .map_err(|e| HttpError::for_internal_error(e.to_string()))?;
                (status, None, body)
            }
        };
        let mut response = Response::builder().status(status);
        if let Some(headers) = response.headers_mut() {
            headers.extend(self.headers);
            match location {
                Some(location) => {
                    let value = HeaderValue::from_str(&location)
                        .map_err(|e| HttpError::for_internal_error(e.to_string()))?;
                    headers.insert(http::header::LOCATION, value);
                }
                None => {
                    headers.insert(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                }
            }
        }
        Ok(response.body(body)?)
    }

    fn response_metadata() -> ApiEndpointResponse {
        ApiEndpointResponse {
            schema: None,
            headers: Vec::new(),
            success: Some(StatusCode::FOUND),
            description: Some("Found".to_string()),
        }
    }

    fn status_code(&self) -> StatusCode {
        match &self.target {
            Ok(_) => StatusCode::FOUND,
            Err((status, _)) => *status,
        }
    }
}

/// What a handler answers: a [`Reply`] or a [`Redirect`]. Both can carry an
/// allauth envelope with any status, plus headers.
pub trait Answer: Sized {
    /// Any allauth envelope.
    fn with_envelope(status: StatusCode, body: Envelope) -> Self;
    /// An envelope from a JSON object; `status` is inserted.
    fn envelope(status: StatusCode, body: Value) -> Self {
        Self::with_envelope(status, Envelope::Json(body))
    }
    /// An envelope serialised from one of the document's response bodies.
    fn serialized(status: StatusCode, body: Serialized) -> Self {
        Self::with_envelope(status, Envelope::Serialized(body))
    }
    fn headers_mut(&mut self) -> &mut HeaderMap;
    /// The status the answer will be sent with.
    fn status(&self) -> StatusCode;
}

impl<T, const STATUS: u16> Answer for Reply<T, STATUS> {
    fn with_envelope(status: StatusCode, body: Envelope) -> Self {
        Reply::envelope(status, body)
    }

    fn status(&self) -> StatusCode {
        self.status
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        Reply::headers_mut(self)
    }
}

impl Answer for Redirect {
    fn with_envelope(status: StatusCode, body: Envelope) -> Self {
        Redirect::envelope(status, body)
    }

    fn status(&self) -> StatusCode {
        match &self.target {
            Ok(_) => StatusCode::FOUND,
            Err((status, _)) => *status,
        }
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        Redirect::headers_mut(self)
    }
}

// ---------------------------------------------------------------------------
// The `client` path parameter
// ---------------------------------------------------------------------------

/// The two kinds of client allauth serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientKind {
    App,
    Browser,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::App => "app",
            ClientKind::Browser => "browser",
        }
    }
}

/// The `{client}` segment. `S` is the schema the document gives it (both
/// clients, or one); the value is whatever the request said, so that an
/// unknown client is answered with the allauth 404 envelope by the handler.
pub struct ClientParam<S> {
    raw: String,
    _schema: PhantomData<fn() -> S>,
}

impl<S> ClientParam<S> {
    /// The client named in the path, if it is one we know.
    pub fn kind(&self) -> Option<ClientKind> {
        match self.raw.as_str() {
            "app" => Some(ClientKind::App),
            "browser" => Some(ClientKind::Browser),
            _ => None,
        }
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The parameter for client `raw` (for endpoints outside the API
    /// paths that act for a client, such as provider callbacks).
    pub fn named(raw: &str) -> Self {
        Self {
            raw: raw.to_string(),
            _schema: PhantomData,
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[allow(dead_code)]
struct ClientPathSchema<S> {
    client: S,
}

/// The second path segment: `/_allauth/{segment}/…`.
fn allauth_segment<C: ServerContext>(rqctx: &RequestContext<C>) -> String {
    rqctx
        .request
        .uri()
        .path()
        .split('/')
        .nth(2)
        .unwrap_or_default()
        .to_string()
}

#[async_trait]
impl<S> SharedExtractor for ClientParam<S>
where
    S: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<C: ServerContext>(rqctx: &RequestContext<C>) -> Result<Self, HttpError> {
        Ok(Self {
            raw: allauth_segment(rqctx),
            _schema: PhantomData,
        })
    }

    fn metadata(body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <dropshot::Path<ClientPathSchema<S>> as SharedExtractor>::metadata(body_content_type)
    }
}

/// The rest of a path under `/accounts/`, by segment.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AccountsPathParam {
    pub rest: Vec<String>,
}

/// The document name for `/_allauth/{name}` (`openapi.json`, …).
pub struct SpecDocumentParam {
    pub name: String,
}

#[async_trait]
impl SharedExtractor for SpecDocumentParam {
    async fn from_request<C: ServerContext>(rqctx: &RequestContext<C>) -> Result<Self, HttpError> {
        Ok(Self {
            name: allauth_segment(rqctx),
        })
    }

    fn metadata(body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <dropshot::Path<ClientPathSchema<String>> as SharedExtractor>::metadata(body_content_type)
    }
}

// ---------------------------------------------------------------------------
// Headers and query
// ---------------------------------------------------------------------------

/// Header parameters, parsed leniently: a bad or missing header becomes a
/// 400 envelope when the handler asks for the value.
pub struct HeaderParams<H> {
    parsed: Result<H, String>,
}

/// An extracted input (headers, query or body) that is read by the handler,
/// so that the handler decides when a malformed one is answered with 400.
pub trait Input {
    type Value;
    /// The value, or the 400 errors to answer with.
    fn read(self) -> Result<Self::Value, Vec<ErrorItem>>;
}

macro_rules! input {
    ($($extractor:ident),*) => {$(
        impl<T> Input for $extractor<T> {
            type Value = T;
            fn read(self) -> Result<T, Vec<ErrorItem>> {
                self.into_inner()
            }
        }
    )*};
}

input!(HeaderParams, QueryParams, JsonBody, FormBody);

impl<H> HeaderParams<H> {
    /// The headers, or the 400 errors to answer with.
    pub fn into_inner(self) -> Result<H, Vec<ErrorItem>> {
        self.parsed
            .map_err(|message| vec![ErrorItem::new("invalid", None, message)])
    }
}

#[async_trait]
impl<H> SharedExtractor for HeaderParams<H>
where
    H: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<C: ServerContext>(rqctx: &RequestContext<C>) -> Result<Self, HttpError> {
        let parsed = H::deserialize(HeaderFields(rqctx.request.headers()))
            .map_err(|e| format!("error processing headers: {e}"));
        Ok(Self { parsed })
    }

    fn metadata(body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <dropshot::Header<H> as SharedExtractor>::metadata(body_content_type)
    }
}

/// A header struct read straight from the request: each of its fields
/// (named as the document spells the header) is looked up by name, which
/// HTTP compares without case. Only the named headers are read, with no
/// copy of the whole map, and an unrelated header that is not text cannot
/// fail the call.
struct HeaderFields<'a>(&'a HeaderMap);

impl<'de> serde::Deserializer<'de> for HeaderFields<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom(
            "header parameters are read into a struct",
        ))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let present = fields.iter().filter_map(|name| {
            self.0
                .get(*name)
                .map(|value| (*name, HeaderText(name, value)))
        });
        let mut map = serde::de::value::MapDeserializer::new(present);
        let value = visitor.visit_map(&mut map)?;
        map.end()?;
        Ok(value)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// One header's value (with its name, for the error), as text.
struct HeaderText<'a>(&'static str, &'a HeaderValue);

impl<'de> serde::de::IntoDeserializer<'de, serde::de::value::Error> for HeaderText<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> serde::Deserializer<'de> for HeaderText<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let text = self.1.to_str().map_err(|_| {
            serde::de::Error::custom(format!("header `{}` is not visible ASCII text", self.0))
        })?;
        visitor.visit_str(text)
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Query parameters, parsed leniently like [`HeaderParams`].
pub struct QueryParams<Q> {
    parsed: Result<Q, ErrorItem>,
}

impl<Q> QueryParams<Q> {
    /// The query, or the 400 errors to answer with.
    pub fn into_inner(self) -> Result<Q, Vec<ErrorItem>> {
        self.parsed.map_err(|item| vec![item])
    }
}

#[async_trait]
impl<Q> SharedExtractor for QueryParams<Q>
where
    Q: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<C: ServerContext>(rqctx: &RequestContext<C>) -> Result<Self, HttpError> {
        let query = rqctx.request.uri().query().unwrap_or_default();
        let parsed = serde_urlencoded::from_str::<Q>(query)
            .map_err(|e| ErrorItem::new("invalid", None, e.to_string()));
        Ok(Self { parsed })
    }

    fn metadata(body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <dropshot::Query<Q> as SharedExtractor>::metadata(body_content_type)
    }
}

// ---------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------

/// Why a request body could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the configured limit, or the connection broke.
    Unreadable(String),
    /// Not JSON (or not form-encoded) at all.
    Malformed(String),
    /// JSON, but not an object.
    NotAnObject,
    /// The fields did not fit: every entry names its field.
    Fields(Vec<ErrorItem>),
}

impl BodyError {
    /// The 400 errors to answer with.
    pub fn into_errors(self) -> Vec<ErrorItem> {
        let items = match self {
            BodyError::Unreadable(message) => vec![ErrorItem::new("invalid", None, message)],
            BodyError::Malformed(message) => {
                vec![ErrorItem::new(
                    "invalid",
                    None,
                    format!("The request body is not valid: {message}"),
                )]
            }
            BodyError::NotAnObject => vec![ErrorItem::new(
                "invalid",
                None,
                "The request body must be a JSON object.",
            )],
            BodyError::Fields(items) => items,
        };
        items
    }
}

/// The errors of a body that did not fit, and its object if it was one.
pub type FormFailure = (Vec<ErrorItem>, Option<serde_json::Map<String, Value>>);

/// A JSON request body. The `Content-Type` header is not looked at (allauth
/// does not either); parse problems are kept for the handler to report.
pub struct JsonBody<T> {
    parsed: Result<T, BodyError>,
    /// The body's object when its fields did not fit `T`, for a handler
    /// that reports the other fields' errors too ([`JsonBody::read_form`]).
    raw: Option<serde_json::Map<String, Value>>,
}

/// A form-encoded request body (the provider redirect), kept like [`JsonBody`].
pub struct FormBody<T> {
    parsed: Result<T, BodyError>,
    /// The form's fields as posted (also those the type does not name).
    fields: Vec<(String, String)>,
}

impl<T> JsonBody<T> {
    /// The body, or the 400 errors to answer with.
    pub fn into_inner(self) -> Result<T, Vec<ErrorItem>> {
        self.parsed.map_err(BodyError::into_errors)
    }

    /// The body; or, when its fields did not fit, the errors together with
    /// the body's object, so that the caller can add the errors of the
    /// fields that did fit (as a Django form reports every field at once).
    pub fn read_form(self) -> Result<T, FormFailure> {
        let raw = self.raw;
        self.parsed.map_err(|e| (e.into_errors(), raw))
    }
}

impl<T> FormBody<T> {
    /// A posted field, by name (the first, if repeated).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body, or the 400 errors to answer with.
    pub fn into_inner(self) -> Result<T, Vec<ErrorItem>> {
        self.parsed.map_err(BodyError::into_errors)
    }
}

async fn read_body<C: ServerContext>(
    rqctx: &RequestContext<C>,
    request: hyper::Request<Body>,
) -> Result<bytes::Bytes, BodyError> {
    <UntypedBody as ExclusiveExtractor>::from_request(rqctx, request)
        .await
        .map(|body| bytes::Bytes::copy_from_slice(body.as_bytes()))
        .map_err(|e| BodyError::Unreadable(e.external_message))
}

/// Turns a JSON object into `T`, naming every missing required field (as
/// allauth's form validation does) and otherwise the first field that failed.
pub fn decode_object<T: DeserializeOwned + JsonSchema + 'static>(
    value: &Value,
) -> Result<T, BodyError> {
    let Value::Object(map) = value else {
        return Err(BodyError::NotAnObject);
    };
    let fields = schema_fields::<T>();
    let missing: Vec<ErrorItem> = fields
        .required
        .iter()
        .filter(|field| map.get(field.as_str()).is_none_or(Value::is_null))
        .map(|field| ErrorItem::new("required", Some(field), "This field is required."))
        .collect();
    if !missing.is_empty() {
        return Err(BodyError::Fields(missing));
    }
    // The document types these fields without `nullable`: an explicit null
    // is refused rather than read as absent (a required one was reported
    // above as missing, as a Django form reports it).
    let nulls: Vec<ErrorItem> = map
        .iter()
        .filter(|(name, value)| value.is_null() && fields.properties.contains(name.as_str()))
        .map(|(name, _)| ErrorItem::new("invalid", Some(name), "This field may not be null."))
        .collect();
    if !nulls.is_empty() {
        return Err(BodyError::Fields(nulls));
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|error| {
        let path = error.path().to_string();
        let param = if path == "." || path.is_empty() {
            None
        } else {
            Some(path)
        };
        BodyError::Fields(vec![ErrorItem::new(
            "invalid",
            param.as_deref(),
            error.into_inner().to_string(),
        )])
    })
}

/// The property names and `required` list of `T`'s schema.
#[derive(Clone, Debug, Default)]
struct SchemaFields {
    required: Vec<String>,
    properties: BTreeSet<String>,
}

/// [`SchemaFields`] of `T`, computed once per type.
fn schema_fields<T: JsonSchema + 'static>() -> SchemaFields {
    static CACHE: OnceLock<Mutex<HashMap<TypeId, SchemaFields>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(guard) = cache.lock() {
        if let Some(fields) = guard.get(&TypeId::of::<T>()) {
            return fields.clone();
        }
    }
    let schema = schemars::gen::SchemaGenerator::default().into_root_schema_for::<T>();
    let fields = schema
        .schema
        .object
        .as_ref()
        .map(|object| SchemaFields {
            required: object
                .required
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            properties: object.properties.keys().cloned().collect(),
        })
        .unwrap_or_default();
    if let Ok(mut guard) = cache.lock() {
        guard.insert(TypeId::of::<T>(), fields.clone());
    }
    fields
}

#[async_trait]
impl<T> ExclusiveExtractor for JsonBody<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<C: ServerContext>(
        rqctx: &RequestContext<C>,
        request: hyper::Request<Body>,
    ) -> Result<Self, HttpError> {
        let value = match read_body(rqctx, request).await {
            Err(e) => Err(e),
            // An empty body is an empty form, as in allauth.
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(json!({})),
            Ok(bytes) => serde_json::from_slice::<Value>(&bytes)
                .map_err(|e| BodyError::Malformed(e.to_string())),
        };
        // The object is kept only when it did not fit, for `read_form`.
        let (parsed, raw) = match value {
            Err(e) => (Err(e), None),
            Ok(value) => match decode_object(&value) {
                Ok(parsed) => (Ok(parsed), None),
                Err(e) => match value {
                    Value::Object(map) => (Err(e), Some(map)),
                    _ => (Err(e), None),
                },
            },
        };
        Ok(Self { parsed, raw })
    }

    fn metadata(body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <TypedBody<T> as ExclusiveExtractor>::metadata(body_content_type)
    }
}

#[async_trait]
impl<T> ExclusiveExtractor for FormBody<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<C: ServerContext>(
        rqctx: &RequestContext<C>,
        request: hyper::Request<Body>,
    ) -> Result<Self, HttpError> {
        let mut fields = Vec::new();
        let parsed = match read_body(rqctx, request).await {
            Err(e) => Err(e),
            Ok(bytes) => match serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes) {
                Ok(pairs) => {
                    let map: serde_json::Map<String, Value> = pairs
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    fields = pairs;
                    decode_object(&Value::Object(map))
                }
                Err(e) => Err(BodyError::Malformed(e.to_string())),
            },
        };
        Ok(Self { parsed, fields })
    }

    fn metadata(body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <TypedBody<T> as ExclusiveExtractor>::metadata(body_content_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, JsonSchema, PartialEq)]
    struct Login {
        email: String,
        password: String,
        #[serde(default)]
        remember: Option<bool>,
    }

    #[test]
    fn every_missing_required_field_is_named() {
        let error = decode_object::<Login>(&json!({})).expect_err("missing fields");
        assert_eq!(
            error,
            BodyError::Fields(vec![
                ErrorItem::new("required", Some("email"), "This field is required."),
                ErrorItem::new("required", Some("password"), "This field is required."),
            ])
        );
        let error = decode_object::<Login>(&json!({"email": "a@example.com", "password": null}))
            .expect_err("null");
        assert_eq!(
            error,
            BodyError::Fields(vec![ErrorItem::new(
                "required",
                Some("password"),
                "This field is required."
            )])
        );
    }

    #[test]
    fn a_wrongly_typed_field_is_named() {
        let error =
            decode_object::<Login>(&json!({"email": 5, "password": "x"})).expect_err("bad type");
        match error {
            BodyError::Fields(items) => {
                assert_eq!(items.len(), 1);
                assert_eq!(items[0].code, "invalid");
                assert_eq!(items[0].param.as_deref(), Some("email"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn non_objects_and_good_objects() {
        assert_eq!(
            decode_object::<Login>(&json!([1, 2])),
            Err(BodyError::NotAnObject)
        );
        assert_eq!(
            decode_object::<Login>(&json!("x")),
            Err(BodyError::NotAnObject)
        );
        let ok = decode_object::<Login>(
            &json!({"email": "a@example.com", "password": "pw", "extra": 1}),
        );
        assert_eq!(
            ok,
            Ok(Login {
                email: "a@example.com".into(),
                password: "pw".into(),
                remember: None
            })
        );
    }

    #[test]
    fn body_errors_become_400_items() {
        let items = BodyError::Malformed("eof".into()).into_errors();
        assert_eq!(items[0].code, "invalid");
        assert!(items[0].param.is_none());
        assert_eq!(BodyError::NotAnObject.into_errors()[0].code, "invalid");
    }
}
