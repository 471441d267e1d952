//! The one wrapper every operation goes through ([`serve`], called by the
//! generated `allauth_api::tag_handlers!`), and how a handler answers early.

use allauth_api::runtime::{Answer, ClientParam, Envelope, Input, JsonBody};
use dropshot::RequestContext;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::http::{invalid_input, Call, ServerContext};

/// What a handler answers. `Err` is an answer too, given before the
/// handler's work is done (`call.input(body).await?` on invalid input).
pub type Handled<A> = Result<A, Early>;

/// An envelope answered before a handler's work is done, whatever the
/// operation's answer type; [`serve`] turns it into that type.
pub struct Early {
    status: StatusCode,
    body: Envelope,
    headers: HeaderMap,
}

impl Answer for Early {
    fn with_envelope(status: StatusCode, body: Envelope) -> Self {
        Early {
            status,
            body,
            headers: HeaderMap::new(),
        }
    }

    fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    fn status(&self) -> StatusCode {
        self.status
    }
}

impl Early {
    /// The envelope as a plain response (for the endpoints outside the
    /// document).
    pub fn into_response(self) -> http::Response<dropshot::Body> {
        let mut response = http::Response::new(dropshot::Body::from(
            self.body.into_bytes(self.status).unwrap_or_default(),
        ));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }

    fn answer<A: Answer>(self) -> A {
        let mut answer = A::with_envelope(self.status, self.body);
        answer.headers_mut().extend(self.headers);
        answer
    }
}

/// The one wrapper around every operation: admits the call
/// ([`Call::start`]) and runs the handler with it, or answers for the
/// handler at once: 404, the CSRF 403 or the app's 410.
pub async fn serve<'a, S, A, F, Fut>(
    rqctx: &'a RequestContext<ServerContext>,
    client: &ClientParam<S>,
    handler: F,
) -> Result<A, allauth_api::runtime::ApiError>
where
    A: Answer,
    F: FnOnce(Call<'a>) -> Fut,
    Fut: std::future::Future<Output = Handled<A>>,
{
    let started = std::time::Instant::now();
    // On the heap: the future of a whole call is large, and dropshot moves
    // the handler's future (a copy each time) before it first runs it.
    let answer = Box::pin(async move {
        match Call::start::<S, A>(rqctx, client).await {
            Ok(call) => handler(call).await.unwrap_or_else(Early::answer),
            Err(answer) => answer,
        }
    })
    .await;
    crate::metrics::request(
        &rqctx.endpoint.operation_id,
        answer.status(),
        started.elapsed(),
    );
    // A change may have queued account events.
    if *rqctx.request.method() != http::Method::GET {
        rqctx.context().webhooks.wake();
    }
    Ok(answer)
}

impl Call<'_> {
    /// Counts the call toward `action`'s rate limit (by address, and by user
    /// when logged in) before its input is looked at, as allauth's views
    /// do; refused, the call ends with its 429.
    pub async fn limit(self, action: &'static str) -> Result<Self, Early> {
        let consumed = {
            let user = self.session.user.as_ref().map(|u| u.id);
            let deps = self.ctx.deps(self.now_ms, &self.ip, &self.user_agent);
            deps.consume_or_429(action, user, None).await
        };
        match consumed {
            Ok(_ticket) => Ok(self),
            Err(error) => Err(self.finish_auth(Err(error)).await),
        }
    }

    /// The extracted input, or the call ended with its 400 envelope.
    pub async fn input<I: Input>(self, input: I) -> Result<(Self, I::Value), Early> {
        match input.read() {
            Ok(value) => Ok((self, value)),
            Err(errors) => Err(self.finish_auth(Err(invalid_input(errors))).await),
        }
    }

    /// Like [`Call::input`] for a form whose fields the application checks
    /// too: when the body does not fit its type, `fields` checks the body's
    /// object as well and the 400 names every field's error once, in the
    /// order of `order` (as a Django form reports them), so `{}` answers
    /// `required` for each required field, whichever layer requires it.
    pub async fn form<T>(
        self,
        body: JsonBody<T>,
        order: &[&str],
        fields: impl FnOnce(&serde_json::Map<String, Value>) -> Vec<crate::app::FieldError>,
    ) -> Result<(Self, T), Early> {
        let (errors, raw) = match body.read_form() {
            Ok(value) => return Ok((self, value)),
            Err(failed) => failed,
        };
        let crate::app::Error::Invalid(mut all) = invalid_input(errors) else {
            unreachable!("invalid_input is Invalid")
        };
        if let Some(raw) = raw {
            for error in fields(&raw) {
                // A null the document refuses, where the form wants a value:
                // `required`, as allauth reads a null.
                let null = error.code == "required"
                    && error
                        .param
                        .as_deref()
                        .is_some_and(|p| raw.get(p).is_some_and(Value::is_null));
                match all.iter_mut().find(|e| e.param == error.param) {
                    Some(existing) if null => *existing = error,
                    Some(_) => {}
                    None => all.push(error),
                }
            }
        }
        let rank = |param: &Option<String>| {
            param
                .as_deref()
                .and_then(|p| order.iter().position(|o| *o == p))
                .unwrap_or(order.len())
        };
        all.sort_by_key(|e| rank(&e.param));
        Err(self.finish_auth(Err(crate::app::Error::Invalid(all))).await)
    }
}
