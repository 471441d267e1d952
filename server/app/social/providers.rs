//! The configured providers, as allauth's registry resolves them: one
//! [`Provider`] per app (an `openid_connect` app is a provider of its own,
//! named by its `provider_id`), plus `dummy`, which has no app. What a
//! provider is made of is data: an OpenID Connect discovery document, or a
//! plain OAuth2 provider's endpoints and profile field names (the table of
//! known providers below, or `kind = "oauth2"` in the configuration).

use crate::config::{AppConfig, Config, ProviderSettings, SocialAccountConfig, VerifiedEmail};

/// How a provider is talked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// OpenID Connect with discovery: the ID token (and userinfo) say who.
    Oidc { discovery_url: String },
    /// Sign in with Apple: OpenID Connect with a form-post callback and a
    /// client secret that is a JWT signed with the app's key.
    Apple { discovery_url: String },
    /// Plain OAuth2: the profile endpoint says who.
    OAuth2(Box<OAuth2Spec>),
    /// allauth's development provider: a local page asks who.
    Dummy,
}

/// A plain OAuth2 provider as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Spec {
    pub authorize_url: String,
    pub access_token_url: String,
    pub profile_url: String,
    /// GitHub's `/user/emails` (read with `query_email`).
    pub emails_url: Option<String>,
    pub fields: Fields,
}

/// Which profile keys hold allauth's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub uid: String,
    pub email: Option<String>,
    pub email_verified: Option<String>,
    pub username: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// A provider with its app, ready to use.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The provider class's id (`openid_connect`, `github`, …).
    pub id: String,
    /// What the API and the stored accounts call it: the app's
    /// `provider_id` for OpenID Connect, else `id` (allauth's `sub_id`).
    pub sub_id: String,
    pub name: String,
    pub app: Option<AppConfig>,
    pub settings: ProviderSettings,
    pub engine: Engine,
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// The built-in data of a known provider id (before the configuration's
/// overrides).
fn builtin(id: &str, app: Option<&AppConfig>) -> Option<(String, Engine)> {
    let oauth2 =
        |name: &str, spec: OAuth2Spec| Some((name.to_string(), Engine::OAuth2(Box::new(spec))));
    match id {
        "google" => Some((
            "Google".into(),
            Engine::Oidc {
                discovery_url: "https://accounts.google.com/.well-known/openid-configuration"
                    .into(),
            },
        )),
        "openid_connect" => {
            let url = app.and_then(|a| a.settings.server_url.clone())?;
            Some((
                "OpenID Connect".into(),
                Engine::Oidc {
                    discovery_url: well_known(&url),
                },
            ))
        }
        "github" => oauth2(
            "GitHub",
            OAuth2Spec {
                authorize_url: "https://github.com/login/oauth/authorize".into(),
                access_token_url: "https://github.com/login/oauth/access_token".into(),
                profile_url: "https://api.github.com/user".into(),
                emails_url: s("https://api.github.com/user/emails"),
                fields: Fields {
                    uid: "id".into(),
                    email: s("email"),
                    email_verified: None,
                    username: s("login"),
                    name: s("name"),
                    first_name: None,
                    last_name: None,
                },
            },
        ),
        "gitlab" => oauth2(
            "GitLab",
            OAuth2Spec {
                authorize_url: "https://gitlab.com/oauth/authorize".into(),
                access_token_url: "https://gitlab.com/oauth/token".into(),
                profile_url: "https://gitlab.com/api/v4/user".into(),
                emails_url: None,
                fields: Fields {
                    uid: "id".into(),
                    email: s("email"),
                    email_verified: None,
                    username: s("username"),
                    name: s("name"),
                    first_name: None,
                    last_name: None,
                },
            },
        ),
        "microsoft" => {
            let tenant = app
                .and_then(|a| a.settings.tenant.clone())
                .unwrap_or_else(|| "common".into());
            oauth2(
                "Microsoft Graph",
                OAuth2Spec {
                    authorize_url: format!(
                        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
                    ),
                    access_token_url: format!(
                        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
                    ),
                    profile_url: "https://graph.microsoft.com/v1.0/me".into(),
                    emails_url: None,
                    fields: Fields {
                        uid: "id".into(),
                        email: s("mail"),
                        email_verified: None,
                        username: None,
                        name: s("displayName"),
                        first_name: s("givenName"),
                        last_name: s("surname"),
                    },
                },
            )
        }
        "apple" => Some((
            "Apple".into(),
            Engine::Apple {
                // Another server (a test's) only when the app says so.
                discovery_url: app
                    .and_then(|a| a.settings.server_url.as_deref())
                    .map_or_else(
                        || "https://appleid.apple.com/.well-known/openid-configuration".into(),
                        well_known,
                    ),
            },
        )),
        "dummy" => Some(("Dummy".into(), Engine::Dummy)),
        _ => None,
    }
}

/// allauth's `wk_server_url`: the discovery document of an issuer.
pub fn well_known(url: &str) -> String {
    if url.contains("/.well-known/") {
        url.to_string()
    } else {
        format!(
            "{}/.well-known/openid-configuration",
            url.trim_end_matches('/')
        )
    }
}

fn build(id: &str, settings: &ProviderSettings, app: Option<&AppConfig>) -> Option<Provider> {
    let kind = settings.kind.as_deref().unwrap_or(id);
    let (default_name, engine) = match kind {
        "oauth2" => {
            let f = &settings.fields;
            (
                id.to_string(),
                Engine::OAuth2(Box::new(OAuth2Spec {
                    authorize_url: settings.authorize_url.clone()?,
                    access_token_url: settings.access_token_url.clone()?,
                    profile_url: settings.profile_url.clone()?,
                    emails_url: settings.emails_url.clone(),
                    fields: Fields {
                        uid: f.uid.clone().unwrap_or_else(|| "id".into()),
                        email: f.email.clone().or_else(|| s("email")),
                        email_verified: f.email_verified.clone(),
                        username: f.username.clone(),
                        name: f.name.clone().or_else(|| s("name")),
                        first_name: f.first_name.clone(),
                        last_name: f.last_name.clone(),
                    },
                })),
            )
        }
        other => builtin(other, app)?,
    };
    // The configuration's endpoints and field names override the table's.
    let engine = match engine {
        Engine::OAuth2(mut spec) if kind != "oauth2" => {
            let f = &settings.fields;
            if let Some(u) = &settings.authorize_url {
                spec.authorize_url = u.clone();
            }
            if let Some(u) = &settings.access_token_url {
                spec.access_token_url = u.clone();
            }
            if let Some(u) = &settings.profile_url {
                spec.profile_url = u.clone();
            }
            if settings.emails_url.is_some() {
                spec.emails_url = settings.emails_url.clone();
            }
            for (target, value) in [
                (&mut spec.fields.email, &f.email),
                (&mut spec.fields.email_verified, &f.email_verified),
                (&mut spec.fields.username, &f.username),
                (&mut spec.fields.name, &f.name),
                (&mut spec.fields.first_name, &f.first_name),
                (&mut spec.fields.last_name, &f.last_name),
            ] {
                if value.is_some() {
                    *target = value.clone();
                }
            }
            if let Some(uid) = &f.uid {
                spec.fields.uid = uid.clone();
            }
            Engine::OAuth2(spec)
        }
        other => other,
    };
    let sub_id = match (kind, app) {
        ("openid_connect", Some(app)) => app.provider_id.clone()?,
        _ => id.to_string(),
    };
    let name = match (kind, app.and_then(|a| a.name.clone())) {
        // allauth names an OpenID Connect provider after its app.
        ("openid_connect", Some(name)) => name,
        _ => settings.name.clone().unwrap_or(default_name),
    };
    Some(Provider {
        id: kind.to_string(),
        sub_id,
        name,
        app: app.cloned(),
        settings: settings.clone(),
        engine,
    })
}

/// Every configured provider, one per app (allauth's `list_providers`).
pub fn list(config: &Config) -> Vec<Provider> {
    let mut all = Vec::new();
    for (id, settings) in &config.socialaccount.providers {
        let apps: Vec<&AppConfig> = SocialAccountConfig::apps_of(settings).collect();
        if apps.is_empty() {
            all.extend(build(id, settings, None));
        }
        for app in apps {
            all.extend(build(id, settings, Some(app)));
        }
    }
    all
}

/// The provider named `sub_id` in the API (with `client_id`, the app
/// with that client id). Several visible apps for one provider, or none,
/// is `None` (allauth's `MultipleObjectsReturned` / `DoesNotExist`).
pub fn get(config: &Config, sub_id: &str, client_id: Option<&str>) -> Option<Provider> {
    let matching: Vec<Provider> = list(config)
        .into_iter()
        .filter(|p| p.sub_id == sub_id)
        .filter(|p| match (client_id, &p.app) {
            (Some(id), Some(app)) => app.client_id == id,
            _ => true,
        })
        .collect();
    if matching.len() <= 1 {
        return matching.into_iter().next();
    }
    let mut visible = matching
        .into_iter()
        .filter(|p| !p.app.as_ref().is_some_and(|a| a.settings.hidden));
    match (visible.next(), visible.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

impl Engine {
    /// The discovery document of an OpenID Connect engine.
    pub fn discovery_url(&self) -> Option<&str> {
        match self {
            Engine::Oidc { discovery_url } | Engine::Apple { discovery_url } => Some(discovery_url),
            Engine::OAuth2(_) | Engine::Dummy => None,
        }
    }
}

impl Provider {
    pub fn uses_apps(&self) -> bool {
        self.engine != Engine::Dummy
    }

    pub fn supports_redirect(&self) -> bool {
        true
    }

    /// Whether `auth/provider/token` works with it (allauth:
    /// `openid_connect`, `google`, `apple`, `dummy`).
    pub fn supports_token(&self) -> bool {
        !matches!(self.engine, Engine::OAuth2(_))
    }

    pub fn client_id(&self) -> Option<&str> {
        self.app.as_ref().map(|a| a.client_id.as_str())
    }

    /// The client id used in calls to the provider: Apple apps may list
    /// several, comma-separated; the first is the one for API calls.
    pub fn api_client_id(&self) -> Option<&str> {
        self.client_id()
            .map(|id| id.split(',').next().unwrap_or(id).trim())
    }

    /// The audiences an ID token may be issued to.
    pub fn audiences(&self) -> Vec<String> {
        match (&self.engine, self.client_id()) {
            (Engine::Apple { .. }, Some(ids)) => {
                ids.split(',').map(|a| a.trim().to_string()).collect()
            }
            (_, Some(id)) => vec![id.to_string()],
            (_, None) => Vec::new(),
        }
    }

    /// `openid_configuration_url` in `config`: allauth sends it for
    /// `openid_connect` apps only.
    pub fn openid_configuration_url(&self) -> Option<String> {
        match (&self.engine, self.id.as_str()) {
            (Engine::Oidc { discovery_url }, "openid_connect") => Some(discovery_url.clone()),
            _ => None,
        }
    }

    /// The scopes to ask for: the app's, the provider's, or the default.
    pub fn scope(&self, config: &Config) -> Vec<String> {
        if let Some(scope) = self.app.as_ref().and_then(|a| a.settings.scope.clone()) {
            return scope;
        }
        if let Some(scope) = &self.settings.scope {
            return scope.clone();
        }
        let query_email = query_email(config);
        match self.id.as_str() {
            "github" => {
                if query_email {
                    vec!["user:email".into()]
                } else {
                    Vec::new()
                }
            }
            "gitlab" => vec!["read_user".into()],
            "apple" => {
                let mut scope = vec!["name".into()];
                if query_email {
                    scope.push("email".into());
                }
                scope
            }
            "microsoft" => vec!["User.Read".into()],
            "google" => {
                let mut scope = vec!["openid".into(), "profile".into()];
                if query_email {
                    scope.push("email".into());
                }
                scope
            }
            _ => match self.engine {
                Engine::Oidc { .. } => vec!["openid".into(), "profile".into(), "email".into()],
                _ => Vec::new(),
            },
        }
    }

    /// Extra parameters of the authorization request.
    pub fn auth_params(&self) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = self
            .settings
            .auth_params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(app_params) = self
            .app
            .as_ref()
            .and_then(|a| a.settings.auth_params.as_ref())
        {
            params.extend(app_params.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        params
    }

    /// `OAUTH_PKCE_ENABLED`: on by default for OpenID Connect (it costs
    /// nothing where unsupported), off for plain OAuth2 as in allauth.
    pub fn pkce(&self) -> bool {
        self.app
            .as_ref()
            .and_then(|a| a.settings.oauth_pkce_enabled)
            .or(self.settings.oauth_pkce_enabled)
            .unwrap_or(matches!(self.engine, Engine::Oidc { .. }))
    }

    pub fn fetch_userinfo(&self) -> bool {
        self.app
            .as_ref()
            .and_then(|a| a.settings.fetch_userinfo)
            .or(self.settings.fetch_userinfo)
            .unwrap_or(true)
    }

    /// `token_auth_method`: whether the client authenticates with HTTP
    /// Basic at the token endpoint (`None`: decide from discovery).
    pub fn basic_auth(&self) -> Option<bool> {
        self.app
            .as_ref()
            .and_then(|a| a.settings.token_auth_method.as_deref())
            .map(|m| m == "client_secret_basic")
    }

    /// allauth's `is_email_verified`: `VERIFIED_EMAIL` of the app, else of
    /// the provider (all, none, or some domains).
    pub fn forces_verified(&self, email: &str) -> bool {
        let setting = self
            .app
            .as_ref()
            .and_then(|a| a.settings.verified_email.clone())
            .or_else(|| self.settings.verified_email.clone());
        match setting {
            None | Some(VerifiedEmail::All(false)) => false,
            Some(VerifiedEmail::All(true)) => true,
            Some(VerifiedEmail::Domains(domains)) => {
                let domain = email.rsplit_once('@').map_or("", |(_, d)| d).to_lowercase();
                domains.iter().any(|d| d.to_lowercase() == domain)
            }
        }
    }

    /// allauth's `can_authenticate_by_email`.
    pub fn email_authentication(&self, config: &Config) -> bool {
        self.app
            .as_ref()
            .and_then(|a| a.settings.email_authentication)
            .unwrap_or(
                config.socialaccount.email_authentication
                    || self.settings.email_authentication.unwrap_or(false),
            )
    }

    /// The path of allauth's callback for this provider, where the
    /// provider sends the user back (what is registered at the provider).
    pub fn callback_path(&self) -> String {
        match self.id.as_str() {
            "openid_connect" => format!("/accounts/oidc/{}/login/callback/", self.sub_id),
            _ => format!("/accounts/{}/login/callback/", self.sub_id),
        }
    }
}

/// `SOCIALACCOUNT_EMAIL_REQUIRED`: set, or as `account.signup_fields`.
pub fn email_required(config: &Config) -> bool {
    config
        .socialaccount
        .email_required
        .unwrap_or_else(|| config.account.email_required())
}

/// `SOCIALACCOUNT_QUERY_EMAIL`: set, or as `email_required`.
pub fn query_email(config: &Config) -> bool {
    config
        .socialaccount
        .query_email
        .unwrap_or_else(|| email_required(config))
}
