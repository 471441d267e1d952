//! `GET config`: what the frontend needs to know about this server's setup,
//! in allauth's shape (a section appears only for an app that is enabled
//! and built).

use allauth_api::runtime::{ClientKind, Prepared, Reply};
use allauth_api::types;

use crate::app::features::Built;
use crate::config::{Config, LoginMethod, MfaType};
use crate::http::{reply, Call, Handled};

pub async fn config_view(call: Call<'_>) -> Handled<Reply<types::ConfigurationResponse>> {
    let body = call.ctx.config_answers.of(call.client);
    Ok(call.finish_prepared(body).await)
}

/// The config answer of each kind of client, serialised once at start:
/// it depends only on the configuration and on what is built.
pub struct ConfigAnswers {
    app: Prepared<types::ConfigurationResponse>,
    browser: Prepared<types::ConfigurationResponse>,
}

impl ConfigAnswers {
    pub fn new(config: &Config) -> Result<Self, String> {
        let answer = |client| {
            let body = reply::status(200)
                .map(|status| types::ConfigurationResponse {
                    data: configuration(config, Built::CURRENT, client),
                    status,
                })
                .map_err(|e| format!("config answer: {e:?}"))?;
            Prepared::new(&body).map_err(|e| format!("config answer: {e}"))
        };
        Ok(Self {
            app: answer(ClientKind::App)?,
            browser: answer(ClientKind::Browser)?,
        })
    }

    pub fn of(&self, client: ClientKind) -> Prepared<types::ConfigurationResponse> {
        match client {
            ClientKind::App => self.app.clone(),
            ClientKind::Browser => self.browser.clone(),
        }
    }
}

/// The `data` of the config answer for `config`, counting as offered only
/// what `built` says is built.
pub fn configuration(config: &Config, built: Built, client: ClientKind) -> types::Configuration {
    let account = &config.account;
    let has = |m: LoginMethod| account.login_methods.contains(&m);
    // allauth still sends this older field, derived from the login methods.
    let authentication_method = match (has(LoginMethod::Email), has(LoginMethod::Username)) {
        (true, true) => Some(types::AccountConfigurationAuthenticationMethod::UsernameEmail),
        (true, false) => Some(types::AccountConfigurationAuthenticationMethod::Email),
        (false, true) => Some(types::AccountConfigurationAuthenticationMethod::Username),
        (false, false) => None,
    };
    let account_section = types::AccountConfiguration {
        authentication_method,
        email_verification_by_code_enabled: account.email_verification_by_code_enabled
            && built.email_verification_by_code,
        is_open_for_signup: account.signup_open && built.signup,
        login_by_code_enabled: account.login_by_code_enabled && built.login_by_code,
        login_methods: account.login_methods.iter().map(login_method).collect(),
        password_reset_by_code_enabled: account.password_reset_by_code_enabled
            && built.password_reset_by_code,
    };
    let socialaccount = (config.socialaccount.enabled && built.socialaccount).then(|| {
        // allauth lists the providers the calling kind of client can use,
        // by name.
        let mut providers: Vec<_> = crate::app::social::providers::list(config)
            .into_iter()
            .filter(|p| match client {
                ClientKind::App => p.supports_token(),
                ClientKind::Browser => p.supports_redirect(),
            })
            .collect();
        providers.sort_by(|a, b| a.name.cmp(&b.name));
        types::SocialAccountConfiguration {
            providers: providers
                .iter()
                .map(|p| reply::provider(&p.info()))
                .collect(),
        }
    });
    let mfa = (config.mfa.enabled && built.mfa).then(|| types::MfaConfiguration {
        passkey_login_enabled: config.mfa.passkey_login_enabled && built.webauthn,
        // allauth does not send it; the document lets clients treat its
        // absence as unknown.
        passkey_signup_enabled: None,
        supported_types: config
            .mfa
            .supported_types
            .iter()
            .filter(|t| built.webauthn || **t != MfaType::Webauthn)
            .map(|t| reply::authenticator_type(*t))
            .collect(),
    });
    let usersessions = (config.usersessions.enabled && built.usersessions).then_some(
        types::UserSessionsConfiguration {
            track_activity: config.usersessions.track_activity,
        },
    );
    types::Configuration {
        account: account_section,
        mfa,
        socialaccount,
        usersessions,
    }
}

fn login_method(method: &LoginMethod) -> types::LoginMethod {
    match method {
        LoginMethod::Email => types::LoginMethod::Email,
        LoginMethod::Username => types::LoginMethod::Username,
        LoginMethod::Phone => types::LoginMethod::Phone,
    }
}
