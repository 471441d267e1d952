//! allauth's `raise_if_reauthentication_required`: a sensitive change needs
//! an authentication within `reauthentication_timeout`; otherwise the
//! answer is the 401 with the user's reauthentication flows. A user with no
//! way to reauthenticate (no usable password, no second factor) passes.
//! The user's second factors are read only when the last authentication is
//! too old.

use crate::app::account::accounts::Deps;
use crate::app::features::Built;
use crate::app::mfa;
use crate::app::sessions::session::{self, Flow, LiveSession, UserView};
use crate::app::Error;

/// `None` when `user` may go ahead; else the flows to offer.
pub async fn required(
    deps: &Deps<'_>,
    session: &LiveSession,
    user: &UserView,
) -> Result<Option<Vec<Flow>>, Error> {
    if session::recently_authenticated(deps.config, &session.data, deps.now_ms) {
        return Ok(None);
    }
    let flows = flows(deps, user).await?;
    Ok((!flows.is_empty()).then_some(flows))
}

/// The reauthentication flows of `user`.
pub async fn flows(deps: &Deps<'_>, user: &UserView) -> Result<Vec<Flow>, Error> {
    let types = mfa::user_types(deps, user.id).await?;
    Ok(session::reauthentication_flows(
        deps.config,
        Built::CURRENT,
        user,
        &types,
    ))
}
