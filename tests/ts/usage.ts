// A small typed client written against the types that openapi-typescript
// generates from the served /_allauth/openapi.json. `tsc --noEmit -p tests/ts`
// must accept it: it fails when the document stops describing what a frontend
// relies on (paths, bodies, envelopes, discriminators, enums).
import type { components, operations, paths } from "./generated/schema";

type Schemas = components["schemas"];

// --- compile-time assertions ---------------------------------------------------
type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Assert<T extends true> = T;
type Includes<Union, Member> = [Member] extends [Union] ? true : false;

// The kinds of client are a closed set, and the config operation takes one.
export type Client = Schemas["Client"];
export type ClientIsClosed = Assert<Equals<Client, "app" | "browser">>;
export type ConfigTakesClient = Assert<
  Equals<operations["config_view"]["parameters"]["path"]["client"], Client>
>;
// Phone is a login method (allauth's own document forgets it).
export type LoginMethodsAreComplete = Assert<
  Equals<Schemas["LoginMethod"], "email" | "username" | "phone">
>;
// Flow ids that allauth's own document lacks.
export type FlowIdsAreComplete = Assert<
  Includes<
    Schemas["FlowId"],
    "mfa_login_webauthn" | "mfa_signup_webauthn" | "mfa_trust" | "password_reset_by_code"
  >
>;
// Envelope statuses are literal types, so they discriminate.
export type StatusesAreLiterals = Assert<
  Equals<[Schemas["StatusOk"], Schemas["StatusUnauthorized"]], [200, 401]>
>;

// --- GET /_allauth/{client}/v1/config ------------------------------------------
type ConfigPath = paths["/_allauth/{client}/v1/config"];
export type ConfigResponse =
  ConfigPath["get"]["responses"][200]["content"]["application/json"];

async function getJson(url: string, init?: RequestInit): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.json() };
}

export async function getConfig(client: Client, base = ""): Promise<ConfigResponse> {
  const { body } = await getJson(`${base}/_allauth/${client}/v1/config`);
  return body as ConfigResponse;
}

export async function loginFields(client: Client): Promise<string[]> {
  const config = await getConfig(client);
  const account = config.data.account;
  const fields = account.login_methods.map((method): string => {
    switch (method) {
      case "email":
        return "Email address";
      case "username":
        return "Username";
      case "phone":
        return "Phone number";
    }
  });
  if (account.login_by_code_enabled) fields.push("Mail me a sign-in code");
  // Optional sections: present only when the feature is installed.
  const providers = config.data.socialaccount?.providers.map((p) => p.name) ?? [];
  const passkeys = config.data.mfa?.passkey_login_enabled === true;
  return [...fields, ...providers, ...(passkeys ? ["Sign in with a passkey"] : [])];
}

// --- POST /_allauth/{client}/v1/auth/login ---------------------------------------
type LoginOperation = paths["/_allauth/{client}/v1/auth/login"]["post"];
export type LoginBody = LoginOperation["requestBody"]["content"]["application/json"];
type LoginResponses = LoginOperation["responses"];
export type LoginResult =
  | LoginResponses[200]["content"]["application/json"]
  | LoginResponses[400]["content"]["application/json"]
  | LoginResponses[401]["content"]["application/json"];

export const byEmail: LoginBody = { email: "alice@example.org", password: "correct horse" };
export const byUsername: LoginBody = { username: "alice", password: "correct horse" };

export async function login(client: Client, body: LoginBody, sessionToken?: string): Promise<string> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (client === "app" && sessionToken !== undefined) headers["X-Session-Token"] = sessionToken;
  const { body: raw } = await getJson(`/_allauth/${client}/v1/auth/login`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  });
  const result = raw as LoginResult;
  switch (result.status) {
    case 200:
      return `signed in as ${result.data.user.display} (${result.data.methods.map(describeMethod).join(", ")})`;
    case 400:
      return result.errors.map((e) => `${e.param ?? "-"}: ${e.code}: ${e.message}`).join("; ");
    case 401:
      return `next: ${pendingFlow(result.data.flows)?.id ?? "nothing pending"}`;
  }
}

// --- AuthenticationMethod, discriminated by `method` --------------------------
export function describeMethod(m: Schemas["AuthenticationMethod"]): string {
  const when = new Date(m.at * 1000).toISOString();
  switch (m.method) {
    case "password":
      return `${m.reauthenticated === true ? "re-entered" : "entered"} a password for ${m.email ?? m.username ?? "?"} at ${when}`;
    case "password_reset":
      return `reset the password via ${m.email ?? m.phone ?? "?"} at ${when}`;
    case "code":
      return `typed a code sent to ${m.email ?? m.phone ?? "?"} at ${when}`;
    case "socialaccount":
      return `signed in with ${m.provider} as ${m.uid} at ${when}`;
    case "mfa": {
      const kind: Schemas["AuthenticatorType"] = m.type;
      return `${m.passwordless === true ? "passkey" : kind} #${m.id} at ${when}`;
    }
    default: {
      const unreachable: never = m;
      return unreachable;
    }
  }
}

// --- 401: the flows an anonymous session can take ----------------------------------
type SessionOperation = paths["/_allauth/{client}/v1/auth/session"]["get"];
export type Unauthenticated = SessionOperation["responses"][401]["content"]["application/json"];
export type Flow = Unauthenticated["data"]["flows"][number];

export function pendingFlow(flows: readonly Flow[]): Flow | undefined {
  return flows.find((flow) => flow.is_pending === true);
}

export function nextStep(flow: Flow): string {
  switch (flow.id) {
    case "login":
    case "signup":
    case "reauthenticate":
      return "show the password form";
    case "login_by_code":
    case "password_reset_by_code":
      return "ask for the mailed code";
    case "provider_redirect":
    case "provider_token":
      return `offer ${(flow.providers ?? []).join(", ")}`;
    case "provider_signup":
      return `finish signing up with ${flow.provider?.name ?? "the provider"}`;
    case "verify_email":
    case "verify_phone":
      return "ask for the verification code";
    case "mfa_authenticate":
    case "mfa_reauthenticate":
      return `ask for a second factor: ${(flow.types ?? []).join(" or ")}`;
    case "mfa_trust":
      return "ask whether to trust this browser";
    case "mfa_login_webauthn":
    case "mfa_signup_webauthn":
      return "call navigator.credentials";
    default: {
      const unreachable: never = flow.id;
      return unreachable;
    }
  }
}

export async function whatNow(client: Client, sessionToken?: string): Promise<string> {
  const headers: Record<string, string> = {};
  if (client === "app" && sessionToken !== undefined) headers["X-Session-Token"] = sessionToken;
  const { status, body } = await getJson(`/_allauth/${client}/v1/auth/session`, { headers });
  if (status === 401) {
    const anonymous = body as Unauthenticated;
    const pending = pendingFlow(anonymous.data.flows);
    return pending !== undefined ? nextStep(pending) : anonymous.data.flows.map(nextStep).join("; ");
  }
  const signedIn = body as SessionOperation["responses"][200]["content"]["application/json"];
  return `signed in: ${signedIn.data.user.display}`;
}
